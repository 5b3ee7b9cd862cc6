"""Pages for logging in and out, one's own account, and the administration of users and partners."""

from __future__ import annotations

import time
from datetime import datetime

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from markupsafe import Markup

from ..core import phones
from ..core.database import page_arg
from ..core.errors import ServiceError
from ..core.i18n import all_countries
from ..core.permissions import authenticated, public, requires
from ..extensions import db
from . import mfa, services
from .forms import (
    AccountForm,
    ApiTokenForm,
    CodeForm,
    EmptyForm,
    LoginForm,
    PartnerForm,
    PasswordForm,
    SetupForm,
    UserForm,
)
from .models import ApiToken, AuditEvent, PartnerOrganisation, User

bp = Blueprint("auth", __name__, template_folder="templates")

PAGE_SIZE = 50


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("reports.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        result = services.authenticate(form.email.data, form.password.data, request.remote_addr)
        if result.user is not None:
            _fresh_cookie_session()
            if result.second_step:  # the password was right; no session until the second step is done
                session[MFA_PENDING] = {"uid": result.user.id, "at": time.time(),
                                        "next": _safe_next(request.args.get("next"))}
                db.session.commit()
                return redirect(url_for("auth.login_code" if result.second_step == "code" else "auth.login_enrol"))
            login_user(result.user)
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")))
        db.session.commit()
        if result.retry_after:
            flash(_("Too many failed attempts for this account. Try again in %(seconds)s seconds.",
                    seconds=result.retry_after), "error")
            status = 429
        elif result.throttled:
            flash(_("Too many failed attempts from here. Wait 15 minutes, or ask an administrator."), "error")
            status = 429
        else:
            flash(_("Wrong e-mail or password."), "error")
            status = 401
    elif request.method == "POST":
        status = 400
    response = make_response(render_template("auth/login.html", form=form), status)
    if status == 429 and form.is_submitted():
        response.headers["Retry-After"] = str(result.retry_after or 900)
    return response


# --- the second step of logging in ------------------------------------------------------------------

MFA_PENDING = "mfa_pending"  # in the signed cookie session: whose password was right, when, where to go
MFA_PENDING_FOR = 300  # seconds to do the second step after the password


def _fresh_cookie_session() -> None:
    """A new cookie session at login: nothing from before survives (no fixation), but the language."""
    lang = session.get("ui_language")
    session.clear()
    if lang:
        session["ui_language"] = lang


def _pending() -> tuple[User | None, dict]:
    """The user whose password was just right, if the second step is still open for them."""
    state = session.get(MFA_PENDING) or {}
    user = db.session.get(User, state.get("uid") or 0)
    if user is None or not user.active or time.time() - float(state.get("at") or 0) > MFA_PENDING_FOR:
        session.pop(MFA_PENDING, None)
        return None, {}
    return user, state


def _finish_login(user: User, state: dict, how: str):
    token = services.complete_login(user, request.remote_addr, how=how)
    _fresh_cookie_session()
    user.session_token = token
    login_user(user)
    db.session.commit()
    return redirect(state.get("next") or url_for("reports.dashboard"))


def _throttled(user: User) -> Response | None:
    if services.client_throttled(user.email, request.remote_addr):
        services.audit("login.throttled", None, ip=request.remote_addr, step="mfa")
        db.session.commit()
        session.pop(MFA_PENDING, None)
        flash(_("Too many failed attempts from here. Wait 15 minutes, or ask an administrator."), "error")
        return redirect(url_for("auth.login"))
    return None


def _wrong_code(user: User, form: CodeForm, message: str, status: int) -> int:
    """A wrong second-step code: counted like a wrong password, audited, said on the form."""
    services.record_failure(user.email, request.remote_addr, user, action="mfa.failed")
    db.session.commit()
    form.code.errors = [message]
    return status


@bp.route("/login/code", methods=["GET", "POST"])
@public  # the password was right: the pending state in the signed session says for whom
def login_code():
    user, state = _pending()
    if user is None:
        return redirect(url_for("auth.login"))
    if not mfa.enabled(user):
        return redirect(url_for("auth.login_enrol"))
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        if (refused := _throttled(user)) is not None:
            return refused
        how = mfa.check(user, form.code.data)
        if how is not None:
            return _finish_login(user, state, how)
        status = _wrong_code(user, form, _("That code is not right, or was already used. Try the next one."), 401)
    elif request.method == "POST":
        status = 400
    return render_template("auth/login_code.html", form=form), status


@bp.route("/login/enrol", methods=["GET", "POST"])
@public  # the password was right: the pending state in the signed session says for whom
def login_enrol():
    user, state = _pending()
    if user is None:
        return redirect(url_for("auth.login"))
    if mfa.enabled(user):
        return redirect(url_for("auth.login_code"))
    secret = state.get("secret")
    if not secret:  # kept in the signed session until enrolment: the person sees it in the QR code anyway
        secret = state["secret"] = mfa.new_secret()
        session[MFA_PENDING] = state
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        if (refused := _throttled(user)) is not None:
            return refused
        codes = mfa.enrol(user, secret, form.code.data)
        if codes is not None:
            response = _finish_login(user, state, "enrolment")
            return render_template("auth/recovery_codes.html", codes=codes, next=response.location)
        status = _wrong_code(user, form, _("That code is not right. Check the phone's time, and type the code "
                                           "the app shows now."), 400)
    elif request.method == "POST":
        status = 400
    uri = mfa.provisioning_uri(user, secret)
    return render_template("auth/login_enrol.html", form=form, qr=Markup(mfa.qr_svg(uri)),
                           secret=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4))), status


@bp.post("/logout")
@authenticated
def logout():
    if current_user.session_token:
        services.close_session(current_user.session_token)
    services.audit("logout", current_user._get_current_object(), ip=request.remote_addr, target_type="user",
          target_id=current_user.id)
    db.session.commit()
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/setup/<token>", methods=["GET", "POST"])
@public
def setup(token: str):
    if services.setup_token_valid(token) is None:
        abort(404)
    form = SetupForm()
    if form.validate_on_submit():
        try:
            services.complete_setup(token, form.email.data, form.name.data, form.password.data)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("Administrator account created. Log in to continue."), "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/setup.html", form=form)


@bp.route("/account", methods=["GET", "POST"])
@requires("account.edit")
def account():
    user: User = g.user
    form = AccountForm(prefix="acc", ui_language=user.ui_language or "",
                       test_phone=phones.mask(user.test_phone) if user.test_phone else "")
    pw = PasswordForm(prefix="pw")
    if request.method == "POST" and "acc-ui_language" in request.form and form.validate():
        user.ui_language = form.ui_language.data or None
        raw = (form.test_phone.data or "").strip()
        if not raw:
            user.test_phone = None
        elif "•" not in raw:  # the masked value shown back means "unchanged"
            try:
                user.test_phone = phones.parse(raw).e164
            except phones.InvalidNumber:
                form.test_phone.errors = [_("Not a valid phone number: use the international format, e.g. +502 5555 0123.")]
                return render_template("auth/account.html", form=form, pw=pw, mfa_on=mfa.enabled(user),
                                       mfa_required=mfa.required(user),
                                       mfa_codes_left=mfa.recovery_codes_left(user)), 400
        db.session.commit()
        flash(_("Saved."), "success")
        return redirect(url_for("auth.account"))
    if request.method == "POST" and "pw-current" in request.form and pw.validate():
        try:
            services.change_own_password(user, pw.current.data, pw.password.data)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("Password changed."), "success")
            return redirect(url_for("auth.account"))
    return render_template("auth/account.html", form=form, pw=pw, mfa_on=mfa.enabled(user),
                           mfa_required=mfa.required(user), mfa_codes_left=mfa.recovery_codes_left(user))


# --- users -----------------------------------------------------------------------------------

def _user_form(obj: User | None = None) -> UserForm:
    form = UserForm(obj=obj) if obj is not None and request.method == "GET" else UserForm()
    form.partner_id.choices = [(0, "—")] + [
        (p.id, p.name) for p in db.session.scalars(sa.select(PartnerOrganisation).order_by(PartnerOrganisation.name))
    ]
    form.countries.choices = all_countries()
    if obj is not None and request.method == "GET":
        form.countries.data = obj.countries
        form.partner_id.data = obj.partner_id or 0
        form.ui_language.data = obj.ui_language or ""
    return form


@bp.get("/admin/users")
@requires("users.manage")
def users():
    rows = db.session.scalars(sa.select(User).order_by(User.active.desc(), User.name)).all()
    return render_template("auth/users.html", users=rows, form=EmptyForm(), mfa_policy=mfa.policy(),
                           mfa_enabled=mfa.enabled)


@bp.post("/admin/users/two-step-login")
@requires("users.manage")
def mfa_policy():
    """Which staff roles must use two-step login (administrators always do)."""
    form = EmptyForm()
    if form.validate_on_submit():
        for role in mfa.STAFF_ROLES:
            mfa.set_policy(role, request.form.get(f"require_{role}") == "on", g.user)
        db.session.commit()
        flash(_("Saved. People of these roles set up two-step login at their next login."), "success")
    return redirect(url_for("auth.users"))


@bp.route("/admin/users/new", methods=["GET", "POST"])
@requires("users.manage")
def user_new():
    form = _user_form()
    if form.validate_on_submit():
        try:
            user = services.create_user(
                form.email.data, form.name.data, form.role.data, password=form.password.data or None,
                partner_id=form.partner_id.data or None, countries=form.countries.data,
                ui_language=form.ui_language.data or None, actor=g.user)
            user.active = form.active.data
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("User created."), "success")
            return redirect(url_for("auth.users"))
    return render_template("auth/user_form.html", form=form, user=None)


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@requires("users.manage")
def user_edit(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    form = _user_form(user)
    if form.validate_on_submit():
        try:
            services.update_user(user, name=form.name.data, role=form.role.data, active=form.active.data,
                                 partner_id=form.partner_id.data or None, countries=form.countries.data,
                                 ui_language=form.ui_language.data or None, actor=g.user)
            if form.password.data:
                services.set_password(user, form.password.data)
                services.revoke_sessions(user)
                services.audit("user.password_reset", g.user, target_type="user", target_id=user.id)
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("auth.users"))
    return render_template("auth/user_form.html", form=form, user=user)


@bp.post("/admin/users/<int:user_id>/sessions/revoke")
@requires("users.manage")
def user_sessions_revoke(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    if EmptyForm().validate_on_submit():
        services.revoke_sessions(user)
        services.audit("user.sessions_revoked", g.user, target_type="user", target_id=user.id)
        db.session.commit()
        flash(_("All sessions of this user were ended."), "success")
    return redirect(url_for("auth.user_edit", user_id=user.id))


# --- partner organisations ---------------------------------------------------------------------

@bp.get("/partners")
@requires("partners.view")
def partners():
    q = sa.select(PartnerOrganisation).order_by(PartnerOrganisation.name)
    if g.user.role == "partner":
        return redirect(url_for("auth.partner_detail", partner_id=g.user.partner_id))
    return render_template("auth/partners.html", partners=db.session.scalars(q).all())


@bp.get("/partners/<int:partner_id>")
@requires("partners.view")
def partner_detail(partner_id: int):
    if g.user.role == "partner" and g.user.partner_id != partner_id:
        abort(404)
    org = db.session.get(PartnerOrganisation, partner_id) or abort(404)
    return render_template("auth/partner_detail.html", org=org)


def _partner_form(org: PartnerOrganisation | None = None) -> PartnerForm:
    form = PartnerForm(obj=org) if org is not None and request.method == "GET" else PartnerForm()
    form.country.choices = all_countries()
    return form


@bp.route("/admin/partners/new", methods=["GET", "POST"])
@requires("partners.manage")
def partner_new():
    form = _partner_form()
    if form.validate_on_submit():
        try:
            org = services.save_partner(None, name=form.name.data, country=form.country.data,
                                        active=form.active.data, actor=g.user)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("Partner organisation saved."), "success")
            return redirect(url_for("auth.partner_detail", partner_id=org.id))
    return render_template("auth/partner_form.html", form=form, org=None)


@bp.route("/admin/partners/<int:partner_id>", methods=["GET", "POST"])
@requires("partners.manage")
def partner_edit(partner_id: int):
    org = db.session.get(PartnerOrganisation, partner_id) or abort(404)
    form = _partner_form(org)
    if form.validate_on_submit():
        try:
            services.save_partner(org, name=form.name.data, country=form.country.data,
                                  active=form.active.data, actor=g.user)
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("Partner organisation saved."), "success")
            return redirect(url_for("auth.partner_detail", partner_id=org.id))
    return render_template("auth/partner_form.html", form=form, org=org)


# --- audit log -------------------------------------------------------------------------------

@bp.get("/admin/audit")
@requires("audit.view")
def audit_log():
    q = sa.select(AuditEvent).order_by(AuditEvent.id.desc())
    action = request.args.get("action", "").strip()
    actor = request.args.get("actor", "").strip().lower()
    since = request.args.get("since", "").strip()
    if action:
        q = q.where(AuditEvent.action.startswith(action))
    if actor:
        q = q.where(AuditEvent.actor_label.contains(actor))
    if since:
        try:
            q = q.where(AuditEvent.at >= datetime.fromisoformat(since).astimezone())
        except ValueError:
            flash(_("Not a valid date: use YYYY-MM-DD."), "error")
    page = page_arg(request.args)
    rows = db.session.scalars(q.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)).all()
    return render_template("auth/audit.html", events=rows[:PAGE_SIZE], page=page, more=len(rows) > PAGE_SIZE,
                           filters={"action": action, "actor": actor, "since": since})


# --- API tokens ------------------------------------------------------------------------------

@bp.route("/admin/api-tokens", methods=["GET", "POST"])
@requires("api_tokens.manage")
def api_tokens():
    form = ApiTokenForm()
    form.user_id.choices = [(u.id, f"{u.name} <{u.email}>") for u in
                            db.session.scalars(sa.select(User).where(User.active.is_(True)).order_by(User.name))]
    secret = None
    if form.validate_on_submit():
        user = db.session.get(User, form.user_id.data) or abort(404)
        _row, secret = services.create_api_token(user, form.name.data, actor=g.user)
        db.session.commit()
    rows = db.session.scalars(sa.select(ApiToken).order_by(ApiToken.id.desc())).all()
    return render_template("auth/api_tokens.html", form=form, tokens=rows, secret=secret, revoke=EmptyForm())


@bp.post("/admin/api-tokens/<int:token_id>/revoke")
@requires("api_tokens.manage")
def api_token_revoke(token_id: int):
    row = db.session.get(ApiToken, token_id) or abort(404)
    if EmptyForm().validate_on_submit() and row.revoked_at is None:
        services.revoke_api_token(row, g.user)
        db.session.commit()
        flash(_("Token revoked."), "success")
    return redirect(url_for("auth.api_tokens"))
