from django.urls import path

from history import missed, recordings, views

app_name = "history"
urlpatterns = [
    path("", views.call_list, name="list"),
    path("reminders/", views.reminder_list, name="reminders"),
    path("missed/", missed.missed_list, name="missed"),
    path("calls/<int:pk>/", views.call_detail, name="call_detail"),
    path("recordings/", recordings.recording_list, name="recordings"),
    path("recordings/<int:pk>/audio/", recordings.recording_audio, name="recording_audio"),
]
