"""The bid benchmark's own MariaDB database: connecting, recreating it, and the
check after every level that no accepted bid was lost (bench/bids.py)."""


def mysql_connect(args, db: str | None = None):
    import MySQLdb

    kwargs = {"host": args.mysql_host, "port": args.mysql_port, "user": "root", "charset": "utf8mb4", "autocommit": True}
    if db:
        kwargs["database"] = db
    return MySQLdb.connect(**kwargs)


def recreate_database(args) -> None:
    conn = mysql_connect(args)
    try:
        cur = conn.cursor()
        cur.execute(f"DROP DATABASE IF EXISTS `{args.db}`")
        cur.execute(f"CREATE DATABASE `{args.db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        conn.close()


def scalar(cur, sql: str, params=()):
    cur.execute(sql, params)
    row = cur.fetchone()
    return row[0] if row else None


def db_check(conn, lot_id: int, accepted: int) -> tuple[bool, list[str], dict]:
    """No accepted bid lost, none invented, one leader: the highest bidder."""
    cur = conn.cursor()
    rows, max_price, autos = (0, 0, 0)
    cur.execute("SELECT COUNT(*), COALESCE(MAX(price), 0), COALESCE(SUM(is_auto), 0) FROM auction_bid WHERE lot_id = %s", (lot_id,))
    rows, max_price, autos = (int(v) for v in cur.fetchone())
    cur.execute("SELECT bid_count, current_price, leader_id FROM auction_lot WHERE id = %s", (lot_id,))
    bid_count, current_price, leader_id = cur.fetchone()
    cur.execute("SELECT user_id FROM auction_bid WHERE lot_id = %s ORDER BY price DESC, id DESC LIMIT 2", (lot_id,))
    top = [r[0] for r in cur.fetchall()]
    at_max = scalar(cur, "SELECT COUNT(*) FROM auction_bid WHERE lot_id = %s AND price = %s", (lot_id, max_price))
    cur.execute(
        "SELECT COALESCE(SUM(prev_price >= price), 0), COALESCE(SUM(prev_user = user_id), 0) FROM ("
        " SELECT price, user_id, LAG(price) OVER (ORDER BY id) AS prev_price, LAG(user_id) OVER (ORDER BY id) AS prev_user"
        " FROM auction_bid WHERE lot_id = %s) AS t",
        (lot_id,),
    )
    not_rising, self_outbid = (int(v) for v in cur.fetchone())
    problems = []
    if rows != accepted:
        problems.append(f"bid rows {rows} != accepted 201s {accepted}")
    if bid_count != rows:
        problems.append(f"lot.bid_count {bid_count} != bid rows {rows}")
    if rows:
        if current_price != max_price:
            problems.append(f"current_price {current_price} != max bid {max_price}")
        if at_max != 1:
            problems.append(f"{at_max} bids at the top price")
        if leader_id is None or leader_id != top[0]:
            problems.append(f"leader {leader_id} != top bidder {top[0]}")
    elif leader_id is not None or current_price:
        problems.append("no bids but a leader or a price")
    if not_rising:
        problems.append(f"{not_rising} bids not above the one before")
    if self_outbid:
        problems.append(f"{self_outbid} bids outbidding the bidder's own lead")
    if autos:
        problems.append(f"{autos} proxy bids (none expected)")
    facts = {"rows": rows, "bid_count": int(bid_count), "current_price": int(current_price), "max_price": max_price, "leader_id": leader_id}
    return not problems, problems, facts
