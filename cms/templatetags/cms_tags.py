from django import template

from auction.money import format_yuan

register = template.Library()


@register.filter
def yuan(fen) -> str:
    return format_yuan(int(fen or 0))
