from django.urls import path

from history import views

app_name = "history"
urlpatterns = [
    path("", views.call_list, name="list"),
    path("reminders/", views.reminder_list, name="reminders"),
]
