from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.conf import settings
from django.urls import include, path
from django.views.generic import RedirectView

from simplecalls.login import AdminLoginForm, LoginView
from telephony.healthz import healthz

admin.site.login_form = AdminLoginForm  # the admin's login page is throttled like the operators'

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="clients:list"), name="home"),
    path("favicon.ico", RedirectView.as_view(url=f"{settings.STATIC_URL}favicon.svg", permanent=True)),  # browsers ask for it on every site
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("clients/", include("clients.urls")),
    path("history/", include("history.urls")),
    path("telephony/", include("telephony.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),  # no login: for a load balancer or monitoring
]
