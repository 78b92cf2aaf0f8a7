from django.conf import settings
from django.utils import translation


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
