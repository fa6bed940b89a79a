"""Who may do what with a screening: checked by the service for every entry point."""

from __future__ import annotations

from storage.records import Role, Screening, Staff
from storage.repository import Repository


def can_access(staff: Staff, screening: Screening) -> bool:
    """Who may open a screening.

    Admins: all. Others: none of another site's (when both the person and the screening have a
    site). Within that, investigators: all; coordinators: their own.
    """
    if not staff.active:
        return False
    if staff.role is Role.ADMIN:
        return True
    if staff.site and screening.site and staff.site != screening.site:
        return False
    return staff.role is Role.INVESTIGATOR or screening.created_by == staff.telegram_id


def can_work_on(staff: Staff, screening: Screening) -> bool:
    """Who may answer, correct, complete, cancel or close a screening: whoever started it.

    Investigators and admins see other people's screenings (:func:`can_access`) and decide
    their reviews (:func:`can_decide`), but they do not change another person's answers: the
    record says who gave each answer, and that person is the one who screens.
    """
    return staff.active and screening.created_by == staff.telegram_id


def can_decide(staff: Staff, screening: Screening) -> bool:
    """Who may decide a criterion left to the investigator: investigators and admins."""
    return staff.role in (Role.INVESTIGATOR, Role.ADMIN) and can_access(staff, screening)


def withdraw_access(repo: Repository, telegram_id: int) -> Staff | None:
    """Deactivate a staff member; the record stays for the audit trail. ``None`` if unknown."""
    member = repo.get_staff(telegram_id)
    if member is None:
        return None
    return repo.save_staff(
        Staff(member.telegram_id, member.display_name, member.role, False, member.site)
    )
