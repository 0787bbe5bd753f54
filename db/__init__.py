"""The crawl database: the only package that speaks SQL.

``open_database`` (engine), typed models (models), plain records the crawler
sends (records), data functions over a session (store) and the one writer
task (writer).  crawler/ imports records, errors and the writer, never SQLAlchemy.
"""
