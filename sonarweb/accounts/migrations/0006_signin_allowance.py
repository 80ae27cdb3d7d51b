from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_audit_cancelled'),
    ]

    operations = [
        migrations.CreateModel(
            name='SignInAllowance',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scope', models.CharField(max_length=200, unique=True)),
                ('used', models.PositiveIntegerField(default=0)),
                ('last_at', models.DateTimeField(db_index=True)),
            ],
        ),
    ]
