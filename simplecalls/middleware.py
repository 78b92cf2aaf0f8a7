import logging

from django.conf import settings
from django.http import HttpResponseBadRequest
from django.utils import translation

log = logging.getLogger(__name__)


class LanguageMiddleware:
    """Russian unless the user chose another language (the language menu's cookie).

    Unlike Django's LocaleMiddleware, the browser's Accept-Language is ignored: front-desk computers
    often run an English system while the people at them work in Russian.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.supported = {code for code, _ in settings.LANGUAGES}

    def __call__(self, request):
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        language = chosen if chosen in self.supported else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        return response


class BadQueryMiddleware:
    """Query parameters no database takes are the sender's error (400), never the server's (500).

    Views validate their own parameters; this covers every view, Django's admin included, for the
    two the databases themselves refuse: a NUL byte (PostgreSQL text cannot hold one) and an
    integer wider than 64 bits (SQLite, e.g. the admin's ?client=99999999999999999999).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()):
            return HttpResponseBadRequest("A NUL byte in the query string.", content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, OverflowError):
            log.warning("%s %s: a number too large for the database: %s", request.method, request.get_full_path()[:200], exception)
            return HttpResponseBadRequest("A number too large.", content_type="text/plain; charset=utf-8")
        return None
