from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0006_signin_allowance'),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(choices=[('link_created', 'created a public link'), ('link_revoked', 'revoked a public link'), ('link_expired', 'let a public link expire'), ('retitled', 'retitled the request'), ('imported', 'imported the request'), ('removed', 'removed the request'), ('claimed', 'took the request over with their key'), ('cancelled', 'asked Perplexity to cancel the run'), ('token_created', 'created an API token'), ('token_revoked', 'revoked an API token'), ('token_first_used', 'used an API token for the first time')], max_length=16),
        ),
    ]
