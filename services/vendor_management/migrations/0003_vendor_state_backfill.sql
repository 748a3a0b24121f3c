-- One row once every vendor that existed before the VENDOR_STATE stream has its latest state there
-- (services/vendor_management/backfill.py); from then on the outbox relay keeps it up to date.
CREATE TABLE vendor_state_backfill (
    done_at  timestamptz NOT NULL DEFAULT now(),
    vendors  integer     NOT NULL
);
