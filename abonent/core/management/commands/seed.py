from django.core.management.base import BaseCommand, CommandError

from abonent.core.seeding import SeedContext, run_seed


class Command(BaseCommand):
    help = "Fill the database with realistic fake data for benchmarks (bulk SQL; 1,000,000 subscribers in minutes)."

    def add_arguments(self, parser):
        parser.add_argument("--subscribers", type=int, default=1000, help="how many subscribers to create")
        parser.add_argument("--seed", type=int, default=20261129, help="random seed (same seed, same data)")

    def handle(self, *args, subscribers, seed, **options):
        import random

        if subscribers < 0:
            raise CommandError("--subscribers must not be negative")
        ctx = SeedContext(subscribers=subscribers, rng=random.Random(seed), out=self.stderr._out)
        run_seed(ctx)
