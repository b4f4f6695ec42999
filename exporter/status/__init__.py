"""What an operator reads: the /status HTML page (page.py, parts.py, board.py for its
inputs, claim_history.py for the recent claim events) and `batchctl status`'s table and
JSON (table.py). Pure rendering of a snapshot, apart from the two page-view reads
(the sidecar's decisions, the claim history)."""
