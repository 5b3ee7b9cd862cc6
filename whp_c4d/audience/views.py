"""Pages for contacts, consent, CSV import, segments and privacy settings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _

from ..auth.forms import EmptyForm
from ..core import retention
from ..core.database import page_arg
from ..core.errors import ServiceError
from ..core.i18n import all_countries
from ..core.permissions import requires
from ..extensions import db
from . import segments as segment_service
from . import services
from .erasure import erase_contact
from .forms import (
    ConsentForm,
    ContactEditForm,
    ContactForm,
    EraseForm,
    ImportForm,
    LanguageForm,
    NumberForm,
    SegmentForm,
)
from .importer import import_contacts
from .models import Contact, ContentLanguage, Segment

bp = Blueprint("audience", __name__, template_folder="templates")

PAGE_SIZE = 50


def _language_choices():
    from ..core.i18n import language_name

    return [(c, f"{language_name(c)} ({c})") for c in services.enabled_languages()]


def _filters_from_args(args) -> dict:
    return segment_service.clean_filters({
        "countries": args.getlist("countries"), "languages": args.getlist("languages"),
        "channels": args.getlist("channels"), "tags": args.get("tags", ""), "consent": args.get("consent"),
        "active_within_days": args.get("active_within_days"), "inactive_for_days": args.get("inactive_for_days"),
    })


# --- contacts --------------------------------------------------------------------------------

@bp.get("/contacts")
@requires("contacts.view")
def contacts():
    if g.user.role == "partner":
        return _registrations()
    filters = _filters_from_args(request.args)
    q = segment_service.members(g.user, filters)
    search = request.args.get("q", "").strip()
    if search:
        match = sa.or_(Contact.pseudonym == search.upper())
        if g.user.role in ("admin", "officer"):
            try:
                e164 = services.parse_number(search, None).e164
            except ServiceError:
                e164 = None
            found = services.find_by_number(e164) if e164 else None
            if found is not None:
                match = sa.or_(match, Contact.id == found.id)
        q = q.where(match)
    page = page_arg(request.args)
    total = db.session.scalar(q.with_only_columns(sa.func.count(Contact.id)).order_by(None))
    rows = db.session.scalars(q.order_by(Contact.id.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return render_template(
        "audience/contacts.html", contacts=rows, total=total, page=page, more=page * PAGE_SIZE < total,
        filters=filters, search=search, countries=all_countries(), languages=_language_choices(),
        number_for=lambda c: services.number_for_display(c, g.user),
    )


def _registrations():
    """What partners see instead of contacts: their organisation's registrations, each as it was answered
    (the same whether the person was new, known or erased)."""
    page = page_arg(request.args)
    q = services.partner_registrations(g.user.partner_id)
    total = db.session.scalar(q.with_only_columns(sa.func.count()).order_by(None))
    rows = db.session.scalars(q.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return render_template("audience/registrations.html", registrations=rows, total=total, page=page,
                           more=page * PAGE_SIZE < total)


def _contact_form() -> ContactForm:
    form = ContactForm()
    form.country.choices = all_countries()
    form.language.choices = _language_choices()
    if request.method == "GET":
        form.consent_date.data = date.today()
        # The person usually speaks the language the registering user works in; Spanish otherwise.
        ui = str(get_locale())
        form.language.data = ui if ui in dict(form.language.choices) else "es"
        if g.user.partner is not None:
            form.country.data = g.user.partner.country
    if g.user.partner is not None:  # not on their form: a partner's registration is always theirs
        form.consent_source.data = "partner_registration"
    return form


@bp.route("/contacts/new", methods=["GET", "POST"])
@requires("contacts.create")
def contact_new():
    form = _contact_form()
    if form.validate_on_submit():
        source = "partner_registration" if g.user.role == "partner" else form.consent_source.data
        consent_at = datetime.combine(form.consent_date.data, time(12), tzinfo=UTC)
        if g.user.role == "partner":
            return _register_for_partner(form, consent_at)
        try:
            contact = services.create_contact(
                phone=form.phone.data, country=form.country.data, language=form.language.data,
                channels=form.channels.data, tags=(form.tags.data or "").split(";"), actor=g.user,
                consent=services.ConsentInput(source=source, at=consent_at, notice_version=form.notice_version.data),
                partner_id=g.user.partner_id if g.user.role == "partner" else None)
        except ServiceError as exc:
            db.session.rollback()
            field = {"invalid_phone": form.phone, "phone_taken": form.phone, "phone_suppressed": form.phone}.get(exc.code)
            if field is not None:
                field.errors = [exc.message]
            else:
                flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("Contact %(pseudonym)s registered.", pseudonym=contact.pseudonym), "success")
            return redirect(url_for("audience.contact_detail", contact_id=contact.id))
    return render_template("audience/contact_new.html", form=form), (400 if form.errors else 200)


def _register_for_partner(form: ContactForm, consent_at: datetime):
    try:
        registration = services.register_for_partner(
            partner_id=g.user.partner_id, phone=form.phone.data, country=form.country.data,
            language=form.language.data, channels=form.channels.data, tags=(form.tags.data or "").split(";"),
            actor=g.user, consent=services.ConsentInput(source="partner_registration", at=consent_at,
                                                        notice_version=form.notice_version.data))
    except ServiceError as exc:
        db.session.rollback()
        if exc.code == "invalid_phone":
            form.phone.errors = [exc.message]
        else:
            flash(exc.message, "error")
        return render_template("audience/contact_new.html", form=form), 400
    db.session.commit()
    flash(_("Registration %(reference)s received. Thank you: the person will get the messages they agreed to, "
            "unless they have asked us to stop.", reference=registration.reference), "success")
    return redirect(url_for("audience.contacts"))


@bp.get("/contacts/<int:contact_id>")
@requires("contacts.view")
def contact_detail(contact_id: int):
    contact = services.get_visible_contact(g.user, contact_id)
    edit = ContactEditForm(obj=contact)
    edit.country.choices = all_countries()
    edit.language.choices = _language_choices()
    edit.tags.data = "; ".join(t.name for t in contact.tags)
    number = NumberForm()
    number.country.choices = [("", "—")] + all_countries()
    return render_template(
        "audience/contact_detail.html", contact=contact, edit=edit, number_form=number, consent_form=ConsentForm(),
        erase_form=EraseForm(), reveal_form=EmptyForm(), masked=services.number_for_display(contact, g.user),
        history=services.consent_history(contact),
    )


@bp.post("/contacts/<int:contact_id>/edit")
@requires("contacts.edit")
def contact_edit(contact_id: int):
    contact = services.get_visible_contact(g.user, contact_id)
    form = ContactEditForm()
    form.country.choices = all_countries()
    form.language.choices = _language_choices()
    if form.validate_on_submit():
        try:
            services.update_contact(contact, language=form.language.data, country=form.country.data,
                                    timezone=form.timezone.data.strip(), tags=(form.tags.data or "").split(";"),
                                    actor=g.user)
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("Saved."), "success")
    else:
        _flash_form_errors(form)
    return redirect(url_for("audience.contact_detail", contact_id=contact_id))


@bp.post("/contacts/<int:contact_id>/number")
@requires("contacts.edit")
def contact_number(contact_id: int):
    contact = services.get_visible_contact(g.user, contact_id)
    form = NumberForm()
    form.country.choices = [("", "—")] + all_countries()
    if form.validate_on_submit():
        try:
            services.add_number(contact, form.phone.data, form.country.data or contact.country, g.user)
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("The new number is now the contact's current number."), "success")
    else:
        _flash_form_errors(form)
    return redirect(url_for("audience.contact_detail", contact_id=contact_id))


@bp.post("/contacts/<int:contact_id>/reveal")
@requires("contacts.reveal")
def contact_reveal(contact_id: int):
    contact = services.get_visible_contact(g.user, contact_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    number = services.reveal_number(contact, g.user, request.remote_addr)
    db.session.commit()
    return render_template("audience/reveal.html", contact=contact, number=number)


@bp.post("/contacts/<int:contact_id>/consent")
@requires("contacts.edit")
def contact_consent(contact_id: int):
    contact = services.get_visible_contact(g.user, contact_id)
    form = ConsentForm()
    if form.validate_on_submit():
        services.record_consent(contact, form.channel.data, granted=form.decision.data == "grant",
                                source=form.source.data if form.decision.data == "grant" else "officer",
                                notice_version=form.notice_version.data or None, actor=g.user)
        db.session.commit()
        flash(_("Consent recorded."), "success")
    else:
        _flash_form_errors(form)
    return redirect(url_for("audience.contact_detail", contact_id=contact_id))


@bp.post("/contacts/<int:contact_id>/erase")
@requires("contacts.erase")
def contact_erase(contact_id: int):
    contact = services.get_visible_contact(g.user, contact_id)
    form = EraseForm()
    if form.validate_on_submit() and form.confirm.data.strip().upper() == contact.pseudonym:
        erase_contact(contact, g.user)
        db.session.commit()
        flash(_("The contact was erased everywhere. Their number is on the suppression list."), "success")
        return redirect(url_for("audience.contacts"))
    flash(_("Type the pseudonym exactly as shown to confirm the erasure."), "error")
    return redirect(url_for("audience.contact_detail", contact_id=contact_id))


def _flash_form_errors(form) -> None:
    for field in form:
        for error in field.errors:
            flash(f"{field.label.text}: {error}", "error")


# --- import ----------------------------------------------------------------------------------

@bp.route("/contacts/import", methods=["GET", "POST"])
@requires("contacts.import")
def contact_import():
    form = ImportForm()
    report = None
    status = 200
    if form.validate_on_submit():
        upload = request.files["file"]
        try:
            data = upload.read(current_app.config["C4D_IMPORT_MAX_BYTES"] + 1)
        finally:
            upload.close()
        report = import_contacts(data, g.user, all_or_nothing=form.mode.data == "all_or_nothing")
        if report.committed:
            db.session.commit()
        else:
            db.session.rollback()
            status = 400 if report.fatal else 200
    elif request.method == "POST":
        status = 400
    return render_template("audience/import.html", form=form, report=report), status


# --- segments --------------------------------------------------------------------------------

@bp.get("/segments")
@requires("segments.view")
def segments():
    rows = db.session.scalars(sa.select(Segment).order_by(Segment.name)).all()
    counts = {s.id: segment_service.count(g.user, s.filters) for s in rows}
    return render_template("audience/segments.html", segments=rows, counts=counts)


def _segment_form(segment: Segment | None) -> SegmentForm:
    form = SegmentForm()
    if segment is not None and request.method == "GET":
        form = SegmentForm(name=segment.name, **{k: v for k, v in segment.filters.items() if k != "tags"})
        form.tags.data = "; ".join(segment.filters.get("tags", []))
    form.countries.choices = all_countries()
    form.languages.choices = _language_choices()
    return form


def _segment_or_404(segment_id: int | None) -> Segment | None:
    if segment_id is None:
        return None
    return db.session.get(Segment, segment_id) or abort(404)


@bp.get("/segments/new")
@bp.get("/segments/<int:segment_id>")
@requires("segments.view")
def segment_edit(segment_id: int | None = None):
    segment = _segment_or_404(segment_id)
    form = _segment_form(segment)
    count = segment_service.count(g.user, segment.filters if segment else {})
    return render_template("audience/segment_form.html", form=form, segment=segment, count=count)


@bp.post("/segments/new")
@bp.post("/segments/<int:segment_id>")
@requires("segments.manage")
def segment_save(segment_id: int | None = None):
    segment = _segment_or_404(segment_id)
    form = _segment_form(segment)
    if form.validate_on_submit():
        filters = {k: getattr(form, k).data for k in segment_service.FILTER_KEYS}
        try:
            segment = segment_service.save_segment(segment, name=form.name.data, filters=filters, actor=g.user)
        except ServiceError as exc:
            db.session.rollback()
            form.name.errors = [exc.message]
        else:
            db.session.commit()
            flash(_("Segment saved."), "success")
            return redirect(url_for("audience.segment_edit", segment_id=segment.id))
    filters = {k: getattr(form, k).data for k in segment_service.FILTER_KEYS}
    return render_template("audience/segment_form.html", form=form, segment=segment,
                           count=segment_service.count(g.user, filters)), 400


@bp.get("/segments/count")
@requires("segments.view")
def segment_count():
    """Live count for the segment editor (progressive enhancement; the page works without it)."""
    return jsonify(count=segment_service.count(g.user, _filters_from_args(request.args)))


# --- settings: languages and retention ---------------------------------------------------------

@bp.route("/admin/languages", methods=["GET", "POST"])
@requires("settings.manage")
def languages():
    form = LanguageForm()
    if form.validate_on_submit():
        try:
            services.set_language_enabled(form.code.data, form.enabled.data, g.user)
        except ServiceError as exc:
            db.session.rollback()
            form.code.errors = [exc.message]
        else:
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("audience.languages"))
    rows = db.session.scalars(sa.select(ContentLanguage).order_by(ContentLanguage.code)).all()
    return render_template("audience/languages.html", form=form, languages=rows)


@bp.route("/admin/privacy", methods=["GET", "POST"])
@requires("privacy.manage")
def privacy():
    form = EmptyForm()
    if form.validate_on_submit():
        errors = []
        for kind, _row in retention.policies():
            raw = request.form.get(f"days-{kind.kind}", "")
            try:
                days = int(raw)
                retention.set_policy(kind.kind, days, request.form.get(f"enabled-{kind.kind}") == "on")
            except ValueError:
                errors.append(_("The period for “%(kind)s” must be at least %(min)s days.",
                                kind=kind.label(), min=kind.minimum_days))
        if errors:
            db.session.rollback()
            for e in errors:
                flash(e, "error")
        else:
            from ..auth.services import audit

            audit("privacy.retention_changed", g.user)
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("audience.privacy"))
    policies = retention.policies()
    db.session.commit()
    return render_template("audience/privacy.html", form=form, policies=policies, purge_form=EmptyForm())


@bp.post("/admin/privacy/purge")
@requires("privacy.manage")
def privacy_purge():
    if EmptyForm().validate_on_submit():
        from ..auth.services import audit

        result = retention.purge()
        audit("privacy.purged", g.user, removed=result)
        db.session.commit()
        flash(_("Purge done: %(count)s records removed.", count=sum(result.values())), "success")
    return redirect(url_for("audience.privacy"))
