"""See the results: the HTML report, its chart images and the read-only web dashboard with its JSON API.

web/ reads the database only through db/ (the rows ``ethcrawl query`` prints, db.rows) and draws and renders
them; it never counts, never speaks SQL and never touches the crawl's trio machinery.
"""
