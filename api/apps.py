from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Mini-program API"

    def ready(self) -> None:
        from project import dbhealth

        dbhealth.connect()
