"""The catalog: organisations, datasets and their committed versions.

Every method opens its own short transaction. A version row is inserted only
after every one of its files is written, in the same transaction that moves
the dataset's ``current_version``: readers see a complete version or none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, sessionmaker

from catalog.errors import Conflict, InvalidInput, NotFound, Transient
from catalog.identifiers import validate_registration
from catalog.models import Dataset, DatasetContract, DatasetVersion, Organisation
from catalog.regions import Region, parse_region

SLUG = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
ORG_KINDS = ("provider", "consumer", "steward", "operator")
CLASSIFICATIONS = ("public", "internal", "restricted", "personal", "important")


class Registry:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # organisations -----------------------------------------------------------------
    def create_org(
        self, *, name: str, slug: str, kind: str, region: str, registration_id: str
    ) -> Organisation:
        if not SLUG.match(slug):
            raise InvalidInput(
                f"organisation slug {slug!r} must match [a-z][a-z0-9_]{{1,31}} "
                "(it names the org in SQL)",
                field="slug",
            )
        if kind not in ORG_KINDS:
            raise InvalidInput(
                f"organisation kind {kind!r}; use one of {', '.join(ORG_KINDS)}", field="kind"
            )
        if not name.strip():
            raise InvalidInput("organisation name is empty", field="name")
        try:
            parsed_region = parse_region(region)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="region") from None
        registration = validate_registration(parsed_region, registration_id)
        org = Organisation(
            name=name.strip(),
            slug=slug,
            kind=kind,
            region=parsed_region.value,
            registration_id=registration.value,
            registration_scheme=registration.scheme,
        )
        with self.sessions.begin() as session:
            session.add(org)
            try:
                session.flush()
            except IntegrityError:
                raise Conflict(
                    f"an organisation named {name!r} or with slug {slug!r} already exists",
                    name=name,
                    slug=slug,
                ) from None
        return org

    def get_org(self, org_id: str) -> Organisation:
        with self.sessions() as session:
            org = session.get(Organisation, org_id)
        if org is None:
            raise NotFound("organisation", org_id)
        return org

    def find_org(self, ident: str) -> Organisation:
        """By id or slug."""
        with self.sessions() as session:
            org = session.get(Organisation, ident) or session.scalar(
                select(Organisation).where(Organisation.slug == ident)
            )
        if org is None:
            raise NotFound("organisation", ident, "list them with `datashare admin list-orgs`")
        return org

    def orgs_by_id(self, org_ids: Iterable[str]) -> dict[str, Organisation]:
        """The organisations of ``org_ids`` (unknown ids are left out), in one query."""
        wanted = sorted(set(org_ids))
        if not wanted:
            return {}
        with self.sessions() as session:
            found = session.scalars(select(Organisation).where(Organisation.id.in_(wanted)))
            return {org.id: org for org in found}

    def list_orgs(self) -> list[Organisation]:
        with self.sessions() as session:
            return list(session.scalars(select(Organisation).order_by(Organisation.slug)))

    # datasets ----------------------------------------------------------------------
    def create_dataset(
        self,
        *,
        org: Organisation,
        name: str,
        title: str,
        description: str,
        classification: str,
        licence: str,
        contract: dict[str, Any],
        created_by: str = "",
    ) -> Dataset:
        if not DATASET_NAME.match(name):
            raise InvalidInput(
                f"dataset name {name!r} must match [a-z][a-z0-9_]{{0,62}} "
                "(it names the table in SQL)",
                field="name",
            )
        if classification not in CLASSIFICATIONS:
            raise InvalidInput(
                f"classification {classification!r}; use one of {', '.join(CLASSIFICATIONS)}",
                field="classification",
            )
        dataset = Dataset(
            org_id=org.id,
            name=name,
            title=title.strip() or name,
            description=description,
            region=Region(org.region).value,
            classification=classification,
            licence=licence,
            contract=contract,
        )
        with self.sessions.begin() as session:
            session.add(dataset)
            try:
                session.flush()
            except IntegrityError:
                raise Conflict(
                    f"organisation {org.slug} already has a dataset named {name!r}",
                    org=org.slug,
                    dataset=name,
                ) from None
            session.add(
                DatasetContract(
                    dataset_id=dataset.id,
                    version=1,
                    contract=contract,
                    note="created with the dataset",
                    created_by=created_by,
                )
            )
        return dataset

    # contracts ---------------------------------------------------------------------
    def update_contract(
        self, dataset_id: str, contract: dict[str, Any], *, created_by: str, note: str = ""
    ) -> DatasetContract:
        """Store ``contract`` as the dataset's next contract version and make it current.

        Versions already committed keep the contract version they were validated with;
        the next upload is validated against this one.
        """
        for _attempt in range(5):
            with self.sessions.begin() as session:
                dataset = session.get(Dataset, dataset_id)
                if dataset is None:
                    raise NotFound("dataset", dataset_id)
                row = DatasetContract(
                    dataset_id=dataset_id,
                    version=dataset.contract_version + 1,
                    contract=contract,
                    note=note,
                    created_by=created_by,
                )
                session.add(row)
                try:
                    session.flush()
                except IntegrityError:  # a concurrent edit took that number
                    session.rollback()
                    continue
                dataset.contract = contract
                dataset.contract_version = row.version
                return row
        raise Conflict(f"could not store a contract of dataset {dataset_id}: too much contention")

    def contracts(self, dataset_id: str) -> Sequence[DatasetContract]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(DatasetContract)
                    .where(DatasetContract.dataset_id == dataset_id)
                    .order_by(DatasetContract.version)
                )
            )

    def contract(self, dataset_id: str, version: int) -> DatasetContract:
        with self.sessions() as session:
            found = session.scalar(
                select(DatasetContract).where(
                    DatasetContract.dataset_id == dataset_id, DatasetContract.version == version
                )
            )
        if found is None:
            raise NotFound(
                "contract", f"{dataset_id}@{version}", "GET the dataset's contracts to list them"
            )
        return found

    def get_dataset(self, dataset_id: str) -> Dataset:
        with self.sessions() as session:
            dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            raise NotFound("dataset", dataset_id, "GET /v1/datasets lists datasets")
        return dataset

    def find_dataset(self, org_slug: str, name: str) -> Dataset | None:
        with self.sessions() as session:
            return session.scalar(
                select(Dataset)
                .join(Organisation, Organisation.id == Dataset.org_id)
                .where(Organisation.slug == org_slug, Dataset.name == name)
            )

    def datasets_by_id(self, ids: Iterable[str]) -> dict[str, Dataset]:
        """The datasets of ``ids`` (unknown ids are left out), in one read."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        with self.sessions() as session:
            found = session.scalars(select(Dataset).where(Dataset.id.in_(wanted)))
            return {dataset.id: dataset for dataset in found}

    def find_datasets(self, names: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Dataset]:
        """``find_dataset`` for several ``(org_slug, name)`` pairs in one read; a pair that
        names no dataset is absent from the answer."""
        wanted = sorted(set(names))
        if not wanted:
            return {}
        with self.sessions() as session:
            rows = session.execute(
                select(Dataset, Organisation.slug)
                .join(Organisation, Organisation.id == Dataset.org_id)
                .where(tuple_(Organisation.slug, Dataset.name).in_(wanted))
            ).all()
        return {(slug, dataset.name): dataset for dataset, slug in rows}

    def list_datasets(self, *, org_id: str | None = None) -> list[tuple[Dataset, Organisation]]:
        query = select(Dataset, Organisation).join(Organisation, Organisation.id == Dataset.org_id)
        if org_id is not None:
            query = query.where(Dataset.org_id == org_id)
        with self.sessions() as session:
            rows = session.execute(query.order_by(Organisation.slug, Dataset.name)).all()
        return [(row[0], row[1]) for row in rows]

    # versions ----------------------------------------------------------------------
    def commit_version(
        self,
        dataset_id: str,
        *,
        mode: str = "replace",
        parent_version: int | None = None,
        **fields: Any,
    ) -> DatasetVersion:
        """Insert the next version and make it current, atomically; retries a lost race.

        ``mode="append"``: the new version holds ``parent_version``'s files and rows plus
        ``fields["files"]``/``fields["row_count"]``. If another version was committed since
        the caller read ``parent_version`` (its primary-key check saw older rows), this
        raises ``StaleParent`` (transient): the job runs again against the new parent.
        """
        if mode not in ("replace", "append"):
            raise InvalidInput(f"mode {mode!r}; use replace or append", field="mode")
        for _attempt in range(5):
            with self.sessions.begin() as session:
                latest = session.scalar(
                    select(func.max(DatasetVersion.version)).where(
                        DatasetVersion.dataset_id == dataset_id
                    )
                )
                values = dict(fields)
                if mode == "append":
                    current = session.scalar(
                        select(Dataset.current_version).where(Dataset.id == dataset_id)
                    )
                    if current != parent_version:
                        raise StaleParent(dataset_id, parent_version, current)
                    if parent_version is not None:
                        parent = session.scalar(
                            select(DatasetVersion).where(
                                DatasetVersion.dataset_id == dataset_id,
                                DatasetVersion.version == parent_version,
                            )
                        )
                        assert parent is not None
                        values["files"] = list(parent.files) + list(fields.get("files", []))
                        values["row_count"] = parent.row_count + fields.get("row_count", 0)
                        values["bytes"] = parent.bytes + fields.get("bytes", 0)
                version = DatasetVersion(
                    dataset_id=dataset_id,
                    version=(latest or 0) + 1,
                    mode=mode,
                    parent_version=parent_version if mode == "append" else None,
                    **values,
                )
                session.add(version)
                try:
                    session.flush()
                except IntegrityError:
                    session.rollback()
                    continue
                dataset = session.get(Dataset, dataset_id)
                if dataset is None:
                    raise NotFound("dataset", dataset_id)
                dataset.current_version = version.version
                return version
        raise Conflict(f"could not commit a version of dataset {dataset_id}: too much contention")

    def versions(self, dataset_id: str) -> Sequence[DatasetVersion]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(DatasetVersion)
                    .where(DatasetVersion.dataset_id == dataset_id)
                    .order_by(DatasetVersion.version)
                )
            )

    def versions_by_number(
        self, wanted: Iterable[tuple[str, int]], *, documents: bool = True
    ) -> dict[tuple[str, int], DatasetVersion]:
        """``version`` for several ``(dataset_id, number)`` pairs in one read; a pair with no
        committed version is absent from the answer."""
        pairs = sorted(set(wanted))
        if not pairs:
            return {}
        with self.sessions() as session:
            found = session.scalars(
                select(DatasetVersion)
                .where(tuple_(DatasetVersion.dataset_id, DatasetVersion.version).in_(pairs))
                .options(*_version_options(documents))
            ).all()
        return {(v.dataset_id, v.version): v for v in found}

    def version(
        self, dataset_id: str, number: int | None = None, *, documents: bool = True
    ) -> DatasetVersion:
        """A committed version (the current one when ``number`` is None).

        ``documents=False`` leaves out the statistics and the GX result (tens of KB of JSON
        per version, which the query path never reads); touching them then raises."""
        options = _version_options(documents)
        with self.sessions() as session:
            if number is None:
                dataset = session.get(Dataset, dataset_id)
                if dataset is None:
                    raise NotFound("dataset", dataset_id)
                if dataset.current_version is None:
                    raise NotFound(
                        "version", f"{dataset_id}@current", "the dataset has no data yet"
                    )
                number = dataset.current_version
            found = session.scalar(
                select(DatasetVersion)
                .where(DatasetVersion.dataset_id == dataset_id, DatasetVersion.version == number)
                .options(*options)
            )
        if found is None:
            raise NotFound("version", f"{dataset_id}@{number}")
        return found

    def find_version_by_hash(self, dataset_id: str, sha256: str) -> DatasetVersion | None:
        with self.sessions() as session:
            return session.scalar(
                select(DatasetVersion).where(
                    DatasetVersion.dataset_id == dataset_id, DatasetVersion.source_sha256 == sha256
                )
            )


class StaleParent(Conflict, Transient):
    """An append was computed against a version that is no longer current."""

    code = "stale_parent"

    def __init__(self, dataset_id: str, expected: int | None, current: int | None) -> None:
        super().__init__(
            f"dataset {dataset_id} moved from version {expected} to {current} while this "
            "append ran; the job will run again against the new version",
            dataset=dataset_id,
            expected=expected,
            current=current,
        )


def _version_options(documents: bool) -> tuple[Any, ...]:
    """Without ``documents``, the statistics and the GX result (tens of KB of JSON per
    version, which the query path never reads) are not loaded; touching them raises."""
    if documents:
        return ()
    return (
        defer(DatasetVersion.stats, raiseload=True),
        defer(DatasetVersion.gx_result, raiseload=True),
    )
