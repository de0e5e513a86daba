// The system SQLite (Debian: libsqlite3-dev), bound by LatchStoreSQLite's SQLiteConnection.
#include <sqlite3.h>
