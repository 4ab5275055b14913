from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("", views.page, name="page"),
    path("jinja/", views.jinja_page, name="jinja-page"),
    path("admin/", admin.site.urls),
]
