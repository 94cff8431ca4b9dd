import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('auction', '0012_house_rules'),
    ]

    operations = [
        migrations.AddField(
            model_name='autobid',
            name='held_by_budget',
            field=models.BooleanField(default=False),
        ),
        migrations.CreateModel(
            name='SpecialBudget',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('max_total', models.PositiveBigIntegerField(help_text='fen')),
                ('committed', models.PositiveBigIntegerField(default=0, help_text='fen: the prices at which the user leads, at the last decision')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('special', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='budgets', to='auction.special')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='special_budgets', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('user', 'special'), name='special_budget_one_per_user')],
            },
        ),
    ]
