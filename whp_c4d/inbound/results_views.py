"""The results page of a poll step, reached from the campaign page. Who may see campaigns may see it;
those who do not operate campaigns (evaluators) see counts of 1 to 4 as "<5"."""

from __future__ import annotations

from flask import Blueprint, g, render_template, request
from flask_babel import format_percent
from werkzeug.exceptions import NotFound

from ..campaigns.models import Step
from ..core.permissions import requires
from ..core.smallcells import hides_small_cells
from ..extensions import db
from .results import DIMENSIONS, poll_results

bp = Blueprint("polls", __name__, template_folder="templates")


@bp.get("/campaigns/<int:campaign_id>/steps/<int:step_id>/results")
@requires("campaigns.view")
def results(campaign_id: int, step_id: int):
    step = db.session.get(Step, step_id)
    if step is None or step.campaign_id != campaign_id or step.kind != "poll":
        raise NotFound()
    occurrence = request.args.get("occurrence") or None
    r = poll_results(step, occurrence=occurrence, suppress_small_cells=hides_small_cells(g.user.role))
    return render_template("inbound/poll_results.html", campaign=step.campaign, step=step, r=r,
                           dimensions=DIMENSIONS, percent=format_percent)
