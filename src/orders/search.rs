//! The customer search index (`order_search`, FTS5 trigrams), kept in bulk. Placing an order
//! only queues its id (`order_search_queue`, by trigger); the indexer moves queued orders into
//! the index a few thousand at a time, in a write of its own. Writing the index inside the
//! requests that place orders made FTS5 flush and merge segments at each of their savepoints,
//! which at a million orders held every order up for tens of milliseconds. A search reads the
//! index and the queue, so an order is found from the moment it is placed.

use crate::db::{Db, WriteConn};
use sqlx::SqliteConnection;
use std::time::Duration;

/// Orders one indexer turn moves into the index. A turn holds the writer while it runs: the
/// console benchmark indexed a million orders in 20 s, about 20 ms per thousand.
const BATCH: i64 = 5000;

/// How often the indexer looks for queued orders.
const EVERY: Duration = Duration::from_millis(500);

/// Moves up to [`BATCH`] queued orders into the index, as they are now; returns how many.
fn index_queued(conn: &WriteConn) -> Result<usize, sqlx::Error> {
    conn.exec(
        "INSERT INTO order_search (order_id, customer_name, customer_email)
         SELECT o.id, o.customer_name, o.customer_email
         FROM (SELECT order_id FROM order_search_queue ORDER BY order_id LIMIT ?1) AS q
         CROSS JOIN orders AS o ON o.id = q.order_id",
        [BATCH],
    )?;
    conn.exec(
        "DELETE FROM order_search_queue WHERE order_id IN
             (SELECT order_id FROM order_search_queue ORDER BY order_id LIMIT ?1)",
        [BATCH],
    )
}

/// Indexes every order queued so far, one writer turn per [`BATCH`].
pub async fn index_all(db: &Db) -> Result<(), sqlx::Error> {
    loop {
        let queued: bool = {
            let mut conn = db.reader.acquire().await?;
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM order_search_queue)")
                .fetch_one(&mut *conn)
                .await?
        };
        if !queued {
            return Ok(());
        }
        let tx = db.begin().await?;
        let moved = index_queued(&tx)?;
        tx.commit().await?;
        if (moved as i64) < BATCH {
            return Ok(());
        }
    }
}

/// Starts the indexer: it indexes what is queued every [`EVERY`], for as long as the process
/// runs.
pub fn spawn_indexer(db: Db) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = index_all(&db).await {
                tracing::warn!(error = %e, "the order search index could not be brought up to date");
            }
        }
    });
}

/// Above this many queued orders a search does not read the queue (the indexer has fallen far
/// behind): [`matching`] answers `None`. It normally holds half a second of orders.
const QUEUE_READ_LIMIT: i64 = 10_000;

/// The ids of up to `limit` orders whose customer name or e-mail contains `text` (three
/// characters or more), in any case: from the queue, then from the index. An order indexed
/// between the two reads is in both; an order queued after the first is newer than the
/// search. `None` if the queue is too long to read.
pub async fn matching(
    conn: &mut SqliteConnection,
    text: &str,
    limit: i64,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    // CROSS JOIN keeps the queue the outer loop: the planner would otherwise read every order
    // and look each up in the queue (200 ms at a million orders).
    let queued: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT o.id, o.customer_name, o.customer_email
         FROM order_search_queue AS q CROSS JOIN orders AS o ON o.id = q.order_id LIMIT ?",
    )
    .bind(QUEUE_READ_LIMIT + 1)
    .fetch_all(&mut *conn)
    .await?;
    if queued.len() as i64 > QUEUE_READ_LIMIT {
        return Ok(None);
    }
    // The index folds case as Unicode does (its trigram tokenizer); so does this.
    let needle = text.to_lowercase();
    let contains = |field: &str| field.to_lowercase().contains(&needle);
    let mut ids: Vec<String> = queued
        .into_iter()
        .filter(|(_, name, email)| contains(name) || contains(email))
        .map(|(id, _, _)| id)
        .collect();
    let phrase = format!("\"{}\"", text.replace('"', "\"\""));
    let indexed: Vec<String> =
        sqlx::query_scalar("SELECT order_id FROM order_search WHERE order_search MATCH ? LIMIT ?")
            .bind(&phrase)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
    let from_queue: std::collections::HashSet<String> = ids.iter().cloned().collect();
    ids.extend(indexed.into_iter().filter(|id| !from_queue.contains(id)));
    ids.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(Some(ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn count(db: &Db, table: &str) -> i64 {
        let mut conn = db.reader.acquire().await.unwrap();
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    }

    async fn found(db: &Db, text: &str) -> Vec<String> {
        let mut conn = db.reader.acquire().await.unwrap();
        let mut ids = matching(&mut conn, text, 10).await.unwrap().unwrap();
        ids.sort();
        ids
    }

    async fn write(db: &Db, sql: &str) {
        let tx = db.begin().await.unwrap();
        tx.exec(sql, []).unwrap();
        tx.commit().await.unwrap();
    }

    fn order(id: &str, name: &str) -> String {
        format!(
            "INSERT INTO orders (id, view_key, customer_name, customer_email, items, total_cents,
                 currency, status, execution_id, created_at, updated_at)
             VALUES ('{id}', 'key-{id}', '{name}', '{id}@shop.example', '[]', 100, 'USD',
                 'pending', 'e', 'now', 'now')"
        )
    }

    /// An order is found from the moment it is placed, before and after the indexer takes it,
    /// once; renamed or deleted (by hand: the app never does), the index follows.
    #[tokio::test]
    async fn orders_are_found_queued_or_indexed_and_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.sqlite3").display());
        let db = Db::open(&url).await.unwrap();
        for seed in [
            "INSERT INTO definitions (id, sha256, body, created_at) VALUES (1, 'x', '{}', 'now')",
            "INSERT INTO state_machines (name, definition_id, created_at, updated_at)
                 VALUES ('m', 1, 'now', 'now')",
            "INSERT INTO executions (id, name, state_machine, definition_id, status, phase, input,
                 started_at) VALUES ('e', 'e', 'm', 1, 'SUCCEEDED', 'done', '{}', 'now')",
        ] {
            write(&db, seed).await;
        }
        for (id, name) in [
            ("o-1", "Zoë Müller"),
            ("o-2", "Al Smith"),
            ("o-3", "Al Müllerson"),
        ] {
            write(&db, &order(id, name)).await;
        }
        assert_eq!(count(&db, "order_search_queue").await, 3);
        assert_eq!(count(&db, "order_search").await, 0);
        assert_eq!(found(&db, "Müller").await, ["o-1", "o-3"]);
        assert_eq!(
            found(&db, "MÜLLER").await,
            ["o-1", "o-3"],
            "any case, queued"
        );

        index_all(&db).await.unwrap();
        assert_eq!(count(&db, "order_search_queue").await, 0);
        assert_eq!(count(&db, "order_search").await, 3);
        assert_eq!(found(&db, "Müller").await, ["o-1", "o-3"]);
        assert_eq!(
            found(&db, "MÜLLER").await,
            ["o-1", "o-3"],
            "any case, indexed"
        );
        assert_eq!(found(&db, "o-2@shop").await, ["o-2"]);

        write(
            &db,
            "UPDATE orders SET customer_name = 'Zed Renamed' WHERE id = 'o-1'",
        )
        .await;
        assert_eq!(found(&db, "Renamed").await, ["o-1"]);
        assert_eq!(found(&db, "Müller").await, ["o-3"]);
        // Renamed while queued: indexed once, under its new name.
        write(&db, &order("o-4", "Bea Queued")).await;
        write(
            &db,
            "UPDATE orders SET customer_name = 'Bea Later' WHERE id = 'o-4'",
        )
        .await;
        assert_eq!(count(&db, "order_search").await, 3);
        assert_eq!(found(&db, "Bea Later").await, ["o-4"]);
        index_all(&db).await.unwrap();
        assert_eq!(count(&db, "order_search").await, 4);
        assert_eq!(found(&db, "Bea").await, ["o-4"]);
        assert!(found(&db, "Queued").await.is_empty());

        write(&db, "DELETE FROM orders WHERE id IN ('o-3', 'o-4')").await;
        assert_eq!(count(&db, "order_search").await, 2);
        assert!(found(&db, "Bea").await.is_empty());
        assert_eq!(found(&db, "Müller").await, Vec::<String>::new());

        // An indexer far behind: the queue is not read, the caller reads the orders instead.
        write(
            &db,
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10001)
             INSERT INTO orders (id, view_key, customer_name, customer_email, items, total_cents,
                 currency, status, execution_id, created_at, updated_at)
             SELECT printf('b-%05d', i), printf('kb-%d', i), 'Bulk Buyer', 'b@shop.example',
                 '[]', 100, 'USD', 'pending', 'e', 'now', 'now' FROM n",
        )
        .await;
        let mut conn = db.reader.acquire().await.unwrap();
        assert_eq!(matching(&mut conn, "Bulk", 10).await.unwrap(), None);
        drop(conn);
        index_all(&db).await.unwrap();
        assert_eq!(count(&db, "order_search_queue").await, 0);
        assert_eq!(found(&db, "Bulk").await.len(), 10);
    }
}
