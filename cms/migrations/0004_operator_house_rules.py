"""运营 may use the house rules (re-auction, lift a bar): the groups re-applied from cms.roles."""

from django.db import migrations


def roles_reapply(apps, schema_editor):
    from cms.roles import roles_apply

    roles_apply(apps)


class Migration(migrations.Migration):
    dependencies = [("cms", "0003_house_rules"), ("auction", "0012_house_rules")]

    operations = [migrations.RunPython(roles_reapply, migrations.RunPython.noop)]
