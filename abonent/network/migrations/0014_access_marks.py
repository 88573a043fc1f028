# The debtor marks become access marks: what the NAS were told, the payment-page redirect or no access at all
# (dunning's suspended / blocked / terminated). The table keeps its name, network_debtormark: the PostgreSQL
# function network_write_sessions (0010) reads it, and a marked subscriber is not online either way.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('network', '0013_auth_reject_rate_limited'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameModel(old_name='DebtorMark', new_name='AccessMark'),
                migrations.AlterModelTable(name='accessmark', table='network_debtormark'),
            ],
            database_operations=[],
        ),
        migrations.AlterModelOptions(
            name='accessmark',
            options={'verbose_name': 'access mark', 'verbose_name_plural': 'access marks'},
        ),
        migrations.AddField(
            model_name='accessmark',
            name='told',
            field=models.CharField(choices=[('redirect', 'Redirected to the payment page'), ('denied', 'Access denied')], default='redirect', max_length=10),
        ),
        migrations.AlterField(
            model_name='authattempt',
            name='reason',
            field=models.CharField(blank=True, choices=[('unknown_login', 'No such login'), ('bad_password', 'Wrong password'), ('login_disabled', 'Login is disabled'), ('subscriber_closed', "Subscriber's contract is closed"), ('no_subscription', 'No active subscription'), ('frozen', 'Subscription is frozen'), ('too_many_sessions', 'Too many sessions at once'), ('unsupported_auth', 'No password or unsupported authentication method'), ('nas_management', "Asked for the NAS's own console, not for internet access"), ('policy_too_old', 'Database unreachable for too long: only subscribers already online get in'), ('rate_limited', 'Too many wrong passwords: refused without a check for a while'), ('suspended', 'Access suspended for debt'), ('blocked', 'Access blocked by operator'), ('terminated', 'Access terminated by operator')], max_length=30, verbose_name='reason'),
        ),
    ]
