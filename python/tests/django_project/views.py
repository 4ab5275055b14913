from django.shortcuts import render


def page(request):
    return render(request, "page.html", using="django")


def jinja_page(request):
    return render(request, "page.jinja", using="jinja2")
