from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('auction', '0005_refund_retry'),
    ]

    operations = [
        migrations.AddField(
            model_name='lot',
            name='content_version',
            field=models.PositiveIntegerField(default=0, help_text="Bumped by every publish of the lot's content."),
        ),
    ]
