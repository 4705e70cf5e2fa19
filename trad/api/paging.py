"""Paging of the API's lists: `page`/`page_size` or `limit`/`offset`, one style or the other.

`PageQuery` is the query model of a paged list (jobs, logs; its `rows` are the SQL offset and
limit, its `meta` what the response says); `MetricQuery` pages a job's evaluations, counted
from the newest. Both styles at once are refused (422 naming `limit` or `offset`).
"""

from __future__ import annotations

import math
from typing import ClassVar

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from trad.api.schemas import MAX_METRICS_PAGE, MAX_OFFSET, MAX_PAGE, MAX_PAGE_SIZE, JobStatus


def _one_paging_style(info: ValidationInfo) -> None:
    """Refuse `limit`/`offset` beside `page`/`page_size` (validated before them)."""
    given = next((name for name in ("page", "page_size") if info.data.get(name) is not None), None)
    if given is not None:
        raise ValueError(f"use page/page_size or limit/offset, not both ({given} is given too)")


class PageQuery(BaseModel):
    """A page of a list: `page`/`page_size` (pages counted from 1) or `limit`/`offset` (rows skipped), not both."""

    DEFAULT_PAGE_SIZE: ClassVar[int] = 20

    page: int | None = Field(default=None, ge=1, le=MAX_PAGE, description="page number, from 1 (default 1)")
    page_size: int | None = Field(default=None, ge=1, le=MAX_PAGE_SIZE,
                                  description="rows per page (default 20; 100 for logs)")
    limit: int | None = Field(default=None, ge=1, le=MAX_PAGE_SIZE,
                              description="at most this many rows (instead of page_size; not with page/page_size)")
    offset: int | None = Field(default=None, ge=0, le=MAX_OFFSET,
                               description="skip this many rows first (instead of page; not with page/page_size)")

    @field_validator("limit", "offset")
    @classmethod
    def _one_style(cls, value: int | None, info: ValidationInfo) -> int | None:
        _one_paging_style(info)
        return value

    @property
    def rows(self) -> tuple[int, int]:
        """(offset, limit) of the page in rows."""
        if self.limit is not None or self.offset is not None:
            return self.offset or 0, self.limit or self.DEFAULT_PAGE_SIZE
        size = self.page_size or self.DEFAULT_PAGE_SIZE
        return ((self.page or 1) - 1) * size, size

    def meta(self, total: int) -> dict[str, int]:
        """The `meta` of the page: both styles' numbers (the page is the one its first row is on)."""
        offset, limit = self.rows
        return {"page": offset // limit + 1, "page_size": limit, "total": total,
                "total_pages": math.ceil(total / limit), "offset": offset, "limit": limit}


class JobListQuery(PageQuery):
    status: JobStatus | None = None


class LogQuery(PageQuery):
    DEFAULT_PAGE_SIZE: ClassVar[int] = 100


class MetricQuery(BaseModel):
    """Which evaluations of a job: all, those after an iteration, or a page counted from the newest.

    `page`/`page_size` count pages from the newest too: `?page_size=100` is `?limit=100`, and
    `&page=2` is `&offset=100`; one style or the other, not both.
    """

    after_iteration: int | None = Field(default=None, ge=0, le=2**31 - 1,
                                        description="only iterations after this one (the first `limit` of them)")
    page: int | None = Field(default=None, ge=1, le=MAX_PAGE,
                             description="page from the newest (page_size per page): 1 is the latest")
    page_size: int | None = Field(default=None, ge=1, le=MAX_METRICS_PAGE,
                                  description="evaluations per page (default: all of them)")
    limit: int | None = Field(default=None, ge=1, le=MAX_METRICS_PAGE,
                              description="at most this many: the latest ones, in iteration order")
    offset: int | None = Field(default=None, ge=0, le=10_000_000, description="skip this many of the newest first")

    @field_validator("page")
    @classmethod
    def _page_one_direction(cls, page: int | None, info: ValidationInfo) -> int | None:
        if page is not None and page > 1 and info.data.get("after_iteration") is not None:
            raise ValueError("pages count back from the newest; with after_iteration, page forward by passing "
                             "the last iteration you got")
        return page

    @field_validator("limit", "offset")
    @classmethod
    def _one_style(cls, value: int | None, info: ValidationInfo) -> int | None:
        _one_paging_style(info)
        if info.field_name == "offset" and value and info.data.get("after_iteration") is not None:
            raise ValueError("counts back from the newest; with after_iteration, page forward by passing "
                             "the last iteration you got")
        return value

    @property
    def rows(self) -> tuple[int, int | None]:
        """(offset counted from the newest, limit or None for all)."""
        if self.page is None and self.page_size is None:
            return self.offset or 0, self.limit
        if self.page_size is None:
            return 0, None if self.page == 1 else 0
        return ((self.page or 1) - 1) * self.page_size, self.page_size
