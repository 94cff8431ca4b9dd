"""Every Market list finds rows by the user ops are talking to: nickname, openid or phone.

A bidder on the phone gives their WeChat name or their phone number, never a
row id. Users have no phone of their own, so the phone is found through the
shipping addresses they gave (``auction.selectors.users_matching``).
"""

from django.db.models import Q
from django.utils.functional import cached_property

from auction.selectors import users_matching
from cms.exports import ExportingIndexView


class UserSearchIndexView(ExportingIndexView):
    # The path from the listed model to its user ("user", "payment__user"); empty: the list has none.
    user_search_field = ""

    @cached_property
    def is_searchable(self):
        if self.user_search_field:
            return bool(self.index_results_url or self.search_url)
        return super().is_searchable

    def search_queryset(self, queryset):
        if not (self.is_searching and self.user_search_field):
            return super().search_queryset(queryset)
        text = self.search_query
        query = Q(**{f"{self.user_search_field}__in": users_matching(text)})
        for field in self.search_fields or []:
            query |= Q(**{f"{field}__icontains": text})
        return queryset.filter(query)
