"""Baseline servers the benchmark compares Tasks API with (same data, same query)."""

from sqlalchemy import text

# The list query of `listTasks` (default sort), spelled once for both baselines.
TASKS = text(
    "SELECT id, title, description, status, priority, due_date, owner_id, created_at, "
    "updated_at, completed_at, version FROM tasks WHERE owner_id = :owner "
    "ORDER BY created_at DESC, id ASC LIMIT :limit OFFSET :offset"
)
TAGS = text(
    "SELECT task_tags.task_id, tags.name FROM task_tags JOIN tags ON tags.id = task_tags.tag_id "
    "WHERE task_tags.task_id = ANY(:ids) ORDER BY tags.name"
)
COUNT = text("SELECT count(*) FROM tasks WHERE owner_id = :owner")
