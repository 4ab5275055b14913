"""A Django project using kiln.django (the Django tests configure its paths through the
environment: KILN_TEST_STATIC_ROOT, KILN_TEST_ASSETS, KILN_TEST_CONFIG)."""
