"""Customer-facing texts in the customer's language: the message catalogues (`catalogue`)
and which language a customer gets (`negotiate`)."""

from services.i18n.catalogue import Catalogues, negotiate, parse_accept_language

__all__ = ["Catalogues", "negotiate", "parse_accept_language"]
