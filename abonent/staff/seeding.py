"""Demo staff: one user per role, password = login + "-demo" (printed by ``abonent demo``)."""

from abonent.core.seeding import SeedContext, seed_step

from .models import StaffUser
from .permissions import Role

DEMO_USERS = [
    ("admin", Role.ADMIN, "Админов Алексей"),
    ("operator", Role.OPERATOR, "Операторова Ольга"),
    ("cashier", Role.CASHIER, "Кассирова Карина"),
    ("support", Role.SUPPORT, "Поддержкин Павел"),
    ("engineer", Role.ENGINEER, "Инженеров Игорь"),
]


def demo_password(username: str) -> str:
    return f"{username}-demo"


@seed_step("staff", order=10)
def seed_staff(ctx: SeedContext) -> None:
    if not ctx.demo:
        StaffUser.objects.get_or_create(username="seed", defaults={"role": Role.ADMIN, "full_name": "Seed"})
        return
    for username, role, full_name in DEMO_USERS:
        if not StaffUser.objects.filter(username=username).exists():
            StaffUser.objects.create_user(username, demo_password(username), role=role, full_name=full_name)
    ctx.facts["logins"] = [(u, demo_password(u), r.label) for u, r, _ in DEMO_USERS]
