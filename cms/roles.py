"""The three back-office roles, least privilege: each group holds exactly its part.

Written into groups by ``cms/migrations/0002_roles.py`` (and re-applied by
``roles_apply`` when permissions change); the tests check each role can do
its part and nothing else.
"""

EDITOR, OPERATOR, FINANCE = "编辑", "运营", "财务"

# app_label.codename; Wagtail admin access for all three.
MODEL_PERMISSIONS: dict[str, tuple[str, ...]] = {
    # Pages and images only: the page tree and the image library (below), nothing of the market.
    EDITOR: ("wagtailadmin.access_admin",),
    # Coupons, orders and their fulfilment (ship, extend, cancel: change_order), the house rules; what they need to read around them.
    OPERATOR: (
        "wagtailadmin.access_admin",
        "auction.view_order", "auction.change_order",
        "auction.view_coupon", "auction.add_coupon", "auction.change_coupon",
        "auction.view_usercoupon",
        "auction.view_deposit", "auction.view_bid", "auction.view_event",
        # The house rules: re-auction (二拍) and lifting a defaulter's bar (cms.rules_admin).
        "auction.change_lot",
        # Market → Jobs, and retrying a failed task.
        "django_q.view_schedule", "django_q.view_ormq", "django_q.view_success", "django_q.view_failure", "django_q.change_failure",
    ),
    # Money: payments and refunds ("query now", retry refund: change), and the lists to export.
    FINANCE: (
        "wagtailadmin.access_admin",
        "auction.view_payment", "auction.change_payment",
        "auction.view_refund", "auction.change_refund",
        "auction.view_order", "auction.view_deposit", "auction.view_usercoupon", "auction.view_event",
    ),
}
PAGE_PERMISSIONS = {EDITOR: ("add_page", "change_page", "publish_page")}
IMAGE_PERMISSIONS = {EDITOR: ("add_image", "change_image", "choose_image")}


def roles_apply(apps) -> None:
    """Create or reset the groups to exactly these permissions (idempotent)."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    Page = apps.get_model("wagtailcore", "Page")
    Collection = apps.get_model("wagtailcore", "Collection")
    GroupPagePermission = apps.get_model("wagtailcore", "GroupPagePermission")
    GroupCollectionPermission = apps.get_model("wagtailcore", "GroupCollectionPermission")
    root_page = Page.objects.filter(depth=1).first()
    root_collection = Collection.objects.filter(depth=1).first()
    for name, codes in MODEL_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = [
            Permission.objects.get(content_type__app_label=code.split(".")[0], codename=code.split(".")[1]) for code in codes
        ]
        group.permissions.set(permissions)
        GroupPagePermission.objects.filter(group=group).delete()
        if root_page is not None:
            for codename in PAGE_PERMISSIONS.get(name, ()):
                GroupPagePermission.objects.create(
                    group=group, page=root_page, permission=Permission.objects.get(content_type__app_label="wagtailcore", codename=codename)
                )
        GroupCollectionPermission.objects.filter(group=group).delete()
        if root_collection is not None:
            for codename in IMAGE_PERMISSIONS.get(name, ()):
                GroupCollectionPermission.objects.create(
                    group=group, collection=root_collection,
                    permission=Permission.objects.get(content_type__app_label="wagtailimages", codename=codename),
                )
