from django.urls import path

from clients import views
from history import views as history_views  # the history is its own app; only its address sits under the client

app_name = "clients"
urlpatterns = [
    path("", views.client_list, name="list"),
    path("new/", views.client_create, name="create"),
    path("<int:pk>/", views.client_detail, name="detail"),
    path("<int:pk>/edit/", views.client_edit, name="edit"),
    path("<int:pk>/history/", history_views.client_history, name="history"),
]
