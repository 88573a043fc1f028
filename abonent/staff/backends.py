from django.contrib.auth.backends import ModelBackend

from .permissions import has_perm, permissions_of


class RoleBackend(ModelBackend):
    """Password login (argon2) plus permissions from the user's role instead of permission tables."""

    def user_can_authenticate(self, user) -> bool:
        # Service accounts hold API tokens; they never log in to the console.
        return super().user_can_authenticate(user) and not getattr(user, "is_service_account", False)

    def get_all_permissions(self, user_obj, obj=None):
        return {str(p) for p in permissions_of(user_obj)}

    def has_perm(self, user_obj, perm, obj=None):
        return user_obj.has_perm(perm, obj) if hasattr(user_obj, "role") else has_perm(user_obj, perm)

    def has_module_perms(self, user_obj, app_label):
        return getattr(user_obj, "is_staff", False)
