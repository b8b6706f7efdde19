#ifndef AMARS_CSQLITE_SHIM_H
#define AMARS_CSQLITE_SHIM_H
#include <sqlite3.h>
/// SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift cannot import.
static inline void (*amars_sqlite_transient(void))(void *) { return (void (*)(void *))-1; }
#endif
