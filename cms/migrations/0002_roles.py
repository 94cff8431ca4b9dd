"""The back-office roles 编辑, 运营, 财务 (cms.roles)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def roles_create(apps, schema_editor):
    # Permissions are normally made after all migrations (post_migrate); a fresh
    # database has none yet, so make them now for the apps the roles name.
    for label in ("auction", "django_q", "wagtailadmin", "wagtailcore", "wagtailimages"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
    from cms.roles import roles_apply

    roles_apply(apps)


def roles_remove(apps, schema_editor):
    from cms.roles import MODEL_PERMISSIONS

    apps.get_model("auth", "Group").objects.filter(name__in=MODEL_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("cms", "0001_catalog"),
        ("auction", "0011_fulfilment"),
        ("wagtailadmin", "0006_formstate"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
        ("wagtailcore", "0098_apitoken"),
        ("wagtailimages", "0027_image_description"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(roles_create, roles_remove)]
