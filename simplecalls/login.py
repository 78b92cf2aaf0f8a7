"""Logging in, throttled: repeated failures for one user name or from one address lock them out for a while.

The counts live in Django's cache (Redis in production, so every web process sees them).
"""

import hashlib

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from simplecalls.cache import cache

UserModel = get_user_model()


def username_key(username: str) -> str:
    # Hashed, so that any user name makes a valid cache key.
    return "login-failures:username:" + hashlib.sha256(username.casefold().encode()).hexdigest()


def failure_limits(*, username: str, address: str) -> dict[str, int]:
    """The cache keys counting failures, each with its limit."""
    return {username_key(username): settings.LOGIN_FAILURES_PER_USERNAME, f"login-failures:address:{address}": settings.LOGIN_FAILURES_PER_ADDRESS}


def login_locked(*, username: str, address: str) -> bool:
    limits = failure_limits(username=username, address=address)
    counts = cache.get_many(list(limits))
    return any(counts.get(key, 0) >= limit for key, limit in limits.items())


def login_failed(*, username: str, address: str) -> None:
    """Count a failure; each one restarts the clock, so a lock lifts LOGIN_LOCKOUT_SECONDS after the last failure."""
    timeout = settings.LOGIN_LOCKOUT_SECONDS
    for key in failure_limits(username=username, address=address):
        cache.add(key, 0, timeout)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout)
        cache.touch(key, timeout)


def login_succeeded(*, username: str) -> None:
    """The right password clears the user name's count; the address keeps its own, or one account could reset it."""
    cache.delete(username_key(username))


def client_address(request) -> str:
    # Behind a proxy, daphne --proxy-headers puts the browser's address here.
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""


class ThrottledLogin:
    """Refuses every password, the right one included, while the user name or the address is locked out."""

    throttled = False

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        if login_locked(username=username, address=address):
            self.throttled = True
            raise ValidationError(_("Too many failed attempts to log in. Try again later."), code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError as error:
            if error.code == "invalid_login":
                login_failed(username=username, address=address)
            raise
        login_succeeded(username=username)
        return cleaned


class LoginForm(ThrottledLogin, AuthenticationForm):
    pass


class AdminLoginForm(ThrottledLogin, AdminAuthenticationForm):
    pass


class LoginView(auth_views.LoginView):
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.throttled:
            response.status_code = 429
        return response


class UserBackend(ModelBackend):
    """Django's users and permissions, each request's user read with their operator (extension, availability): every
    page and the pop-up's form ask for it, which would otherwise cost a query of its own."""

    def get_user(self, user_id):
        try:
            user = UserModel._default_manager.select_related("operator").get(pk=user_id)
        except UserModel.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
