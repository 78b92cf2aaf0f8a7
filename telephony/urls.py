from django.urls import path

from telephony import dialplan, views

app_name = "telephony"
urlpatterns = [
    path("calls/<int:pk>/", views.call_panel, name="call_panel"),
    path("calls/<int:pk>/save/", views.call_save, name="call_save"),
    path("calls/<int:pk>/client/", views.call_choose_client, name="call_choose_client"),
    path("calls/<int:pk>/close/", views.call_close, name="call_close"),
    path("calls/pending/clear/", views.pending_clear, name="pending_clear"),
    path("demo/call/", views.demo_call, name="demo_call"),
    path("originate/", views.originate, name="originate"),
    path("dialplan/route", dialplan.route, name="dialplan_route"),
    path("dialplan/callerid", dialplan.callerid, name="dialplan_callerid"),
]
