#pragma once

/// @file
/// The VFS of `sqlite_event_store`'s own connection: SQLite's default VFS,
/// except that the frames a commit appends to the WAL reach the file in one
/// write. Internal; included by <unloc/stores/sqlite.hpp>.

#include <unloc/version.hpp>

#include <sqlite3.h>

#include <cstddef>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

UNLOC_BEGIN_NAMESPACE
namespace detail {

// SQLite writes each WAL frame with two system calls, its 24-byte header and
// then its page, so a commit of 7 pages is 14 pwrite calls: 38 us on the CI's
// virtual machine, against 10 us for one write of the same bytes (measured).
// This VFS hands every file to the VFS below untouched except WAL files, whose
// appended frames it gathers and writes at once when the commit frame's page
// arrives (the only frame whose header holds the database's size after the
// commit, a field of the WAL's file format), so before SQLite publishes the
// frames to readers, and with any error returned to the commit. A write of
// another shape (a frame rewritten in place, the WAL's header) and every other
// call on the file (read, sync, size, truncate, close) first write out what is
// gathered. Frames are gathered only inside a write transaction, which the
// database file's shared-memory write lock marks (none in EXCLUSIVE locking
// mode: nothing gathered), and only where writes are power-safe (else SQLite
// pads a commit and splits a frame at the sync). Frames still gathered when
// the transaction ends were never committed (it spilled, then rolled back):
// they are dropped. A write of gathered frames that fails breaks the file
// until the transaction ends, so that it cannot commit without them. A process
// killed with frames gathered loses only frames never published, as it would
// lose them half-written.
class sqlite_wal_vfs {
 public:
  // Registers (once per name) a VFS named `name` over `below` (SQLite's
  // default when null); its name, or null when it cannot (SQLite's error
  // then comes from opening the database with the default VFS instead).
  static const char* install(const char* name = "unloc-wal-batch", sqlite3_vfs* below = nullptr) {
    // Stores opened at once on several threads register the name once.
    static std::mutex installing;
    const std::lock_guard<std::mutex> lock(installing);
    if (sqlite3_vfs* known = sqlite3_vfs_find(name)) return known->zName;
    if (below == nullptr) below = sqlite3_vfs_find(nullptr);
    if (below == nullptr) return nullptr;
    auto* vfs = new (std::nothrow) sqlite3_vfs(*below);  // kept for the process's life
    if (vfs == nullptr) return nullptr;
    vfs->iVersion = below->iVersion < 3 ? below->iVersion : 3;
    vfs->szOsFile = static_cast<int>(below_offset() + static_cast<std::size_t>(below->szOsFile));
    vfs->pNext = nullptr;
    vfs->zName = name;
    vfs->pAppData = below;
    vfs->xOpen = &open;
    vfs->xDelete = [](sqlite3_vfs* v, const char* z, int sync) {
      return base(v)->xDelete(base(v), z, sync);
    };
    vfs->xAccess = [](sqlite3_vfs* v, const char* z, int flags, int* out) {
      return base(v)->xAccess(base(v), z, flags, out);
    };
    vfs->xFullPathname = [](sqlite3_vfs* v, const char* z, int n, char* out) {
      return base(v)->xFullPathname(base(v), z, n, out);
    };
    vfs->xDlOpen = [](sqlite3_vfs* v, const char* z) { return base(v)->xDlOpen(base(v), z); };
    vfs->xDlError = [](sqlite3_vfs* v, int n, char* out) { base(v)->xDlError(base(v), n, out); };
    vfs->xDlSym = [](sqlite3_vfs* v, void* h, const char* z) {
      return base(v)->xDlSym(base(v), h, z);
    };
    vfs->xDlClose = [](sqlite3_vfs* v, void* h) { base(v)->xDlClose(base(v), h); };
    vfs->xRandomness = [](sqlite3_vfs* v, int n, char* out) {
      return base(v)->xRandomness(base(v), n, out);
    };
    vfs->xSleep = [](sqlite3_vfs* v, int us) { return base(v)->xSleep(base(v), us); };
    vfs->xCurrentTime = [](sqlite3_vfs* v, double* out) {
      return base(v)->xCurrentTime(base(v), out);
    };
    vfs->xGetLastError = [](sqlite3_vfs* v, int n, char* out) {
      return base(v)->xGetLastError(base(v), n, out);
    };
    if (vfs->iVersion >= 2) {
      vfs->xCurrentTimeInt64 = [](sqlite3_vfs* v, sqlite3_int64* out) {
        return base(v)->xCurrentTimeInt64(base(v), out);
      };
    }
    if (vfs->iVersion >= 3) {
      vfs->xSetSystemCall = [](sqlite3_vfs* v, const char* z, sqlite3_syscall_ptr f) {
        return base(v)->xSetSystemCall(base(v), z, f);
      };
      vfs->xGetSystemCall = [](sqlite3_vfs* v, const char* z) {
        return base(v)->xGetSystemCall(base(v), z);
      };
      vfs->xNextSystemCall = [](sqlite3_vfs* v, const char* z) {
        return base(v)->xNextSystemCall(base(v), z);
      };
    }
    if (sqlite3_vfs_register(vfs, 0) != SQLITE_OK) {
      delete vfs;
      return nullptr;
    }
    return vfs->zName;
  }

 private:
  static constexpr std::size_t frame_header = 24;  // a WAL frame's header
  static constexpr std::size_t wal_header = 32;    // the WAL file's header, at offset 0
  static constexpr int write_lock = 0;  // the WAL's write lock: slot 0 of its shared-memory locks
  // SQLite's unix VFS writes at most 128 KiB - 1 a call (a larger size is taken
  // modulo 128 KiB), so what is gathered stays under 128 KiB, and a write past
  // it first writes out the rest.
  static constexpr std::size_t most_gathered = std::size_t{96} * 1024;

  // A database or WAL file of this VFS; the file of the VFS below follows it in
  // SQLite's allocation. A database file and the WAL its connection opens know
  // each other: the database's write lock tells the WAL where a transaction
  // begins and ends.
  struct file {
    sqlite3_file io;  // first: SQLite sees a sqlite3_file
    sqlite3_file* below = nullptr;
    const char* name = nullptr;  // a database's name, as SQLite opened it
    file* peer = nullptr;        // the database's WAL, or the WAL's database (null: no gathering)
    // A WAL's frames, written at once.
    std::vector<unsigned char> gathered;
    sqlite3_int64 gathered_at = 0;  // the offset of gathered[0]
    // Where the transaction appends its next frame: the end of its last write
    // (a frame written before it is rewritten, at once); -1 before its first.
    sqlite3_int64 end = -1;
    bool writing = false;      // inside a write transaction (its database holds the write lock)
    bool page_next = false;    // gathered ends with a frame's header
    bool commit_next = false;  // ... the commit frame's
    // A write of gathered frames failed: SQLite holds pages as written that
    // are not, so every call fails until the transaction ends (it cannot
    // commit; a read that failed alone would fail only its statement).
    int broken = SQLITE_OK;
  };

  static sqlite3_vfs* base(sqlite3_vfs* v) { return static_cast<sqlite3_vfs*>(v->pAppData); }
  static constexpr std::size_t below_offset() {
    return (sizeof(file) + alignof(std::max_align_t) - 1) / alignof(std::max_align_t) *
           alignof(std::max_align_t);
  }
  static file* of(sqlite3_file* f) { return reinterpret_cast<file*>(f); }
  static sqlite3_file* below(sqlite3_file* f) { return of(f)->below; }

  // The open database files, for their connection's WAL to find its own.
  static std::mutex& registry_mutex() {
    static std::mutex m;
    return m;
  }
  static std::vector<file*>& databases() {
    static std::vector<file*> open;
    return open;
  }

  static int open(sqlite3_vfs* v, const char* name, sqlite3_file* f, int flags, int* out_flags) {
    const bool wal = (flags & SQLITE_OPEN_WAL) != 0;
    if (!wal && (flags & SQLITE_OPEN_MAIN_DB) == 0) {
      // Any other file is the VFS below's own, in the same memory (it fits: szOsFile is larger).
      return base(v)->xOpen(base(v), name, f, flags, out_flags);
    }
    auto* self = new (f) file{};
    self->below =
        reinterpret_cast<sqlite3_file*>(reinterpret_cast<unsigned char*>(f) + below_offset());
    self->below->pMethods = nullptr;
    const int rc = base(v)->xOpen(base(v), name, self->below, flags, out_flags);
    if (rc != SQLITE_OK) {
      if (self->below->pMethods != nullptr) self->below->pMethods->xClose(self->below);
      self->~file();
      f->pMethods = nullptr;  // SQLite then calls no method of the file
      return rc;
    }
    if (!wal && self->below->pMethods->iVersion < 3) {
      // No shared memory below (no WAL then): the file is the VFS below's own.
      self->below->pMethods->xClose(self->below);
      self->~file();
      return base(v)->xOpen(base(v), name, f, flags, out_flags);
    }
    f->pMethods = wal ? &wal_methods : &database_methods;
    try {
      const std::lock_guard<std::mutex> lock(registry_mutex());
      if (!wal) {
        self->name = name;
        databases().push_back(self);
        return SQLITE_OK;
      }
      // SQLite names a WAL after its database, in the same allocation as the
      // name it opened the database by: that pointer finds the connection's database.
      // Without power-safe overwrite, SQLite pads a synchronous commit to a sector and
      // splits a frame's write at the sync: a split's 24-byte tail reads as a header.
      const char* database = sqlite3_filename_database(name);
      for (file* d : databases()) {
        const int device = d->below->pMethods->xDeviceCharacteristics(d->below);
        if (d->name == database && d->peer == nullptr &&
            (device & SQLITE_IOCAP_POWERSAFE_OVERWRITE) != 0) {
          d->peer = self;
          self->peer = d;
          break;
        }
      }
    } catch (...) {  // the lock or the list failed: nothing gathered for this file
    }
    return SQLITE_OK;
  }

  static int close(sqlite3_file* f) {
    file* self = of(f);
    int rc = SQLITE_OK;
    if (f->pMethods == &wal_methods) rc = flush(self);
    try {
      const std::lock_guard<std::mutex> lock(registry_mutex());
      if (self->peer != nullptr) self->peer->peer = nullptr;
      auto& open = databases();
      for (auto it = open.begin(); it != open.end(); ++it) {
        if (*it == self) {
          open.erase(it);
          break;
        }
      }
    } catch (...) {
    }
    const int closed = self->below->pMethods->xClose(self->below);
    self->~file();
    return rc != SQLITE_OK ? rc : closed;
  }

  // Writes out what is gathered; on an error it is dropped, and the file
  // broken until the transaction ends.
  static int flush(file* w) {
    if (w->broken != SQLITE_OK) return w->broken;
    if (w->gathered.empty()) return SQLITE_OK;
    const int rc = w->below->pMethods->xWrite(w->below, w->gathered.data(),
                                              static_cast<int>(w->gathered.size()), w->gathered_at);
    drop(w);
    if (rc != SQLITE_OK) {
      w->end = -1;
      w->broken = rc;
    }
    return rc;
  }
  static void drop(file* w) {
    w->gathered.clear();
    w->page_next = w->commit_next = false;
  }
  // A write transaction begins or ends: nothing gathered, nothing broken, the append point unknown.
  static void turn(file* w, bool writing) {
    drop(w);
    w->end = -1;
    w->broken = SQLITE_OK;
    w->writing = writing;
  }

  static bool gather(file* w, const void* data, std::size_t n, sqlite3_int64 offset) {
    if (w->gathered.size() + n > most_gathered) return false;
    try {
      if (w->gathered.empty()) w->gathered_at = offset;
      const auto* bytes = static_cast<const unsigned char*>(data);
      w->gathered.insert(w->gathered.end(), bytes, bytes + n);
    } catch (...) {  // out of memory: written at once instead
      return false;
    }
    return true;
  }

  static int write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
    file* w = of(f);
    if (w->broken != SQLITE_OK) return w->broken;
    const auto n = static_cast<std::size_t>(amount);
    const sqlite3_int64 gathered_end =
        w->gathered_at + static_cast<sqlite3_int64>(w->gathered.size());
    // The shapes gathered, in a write transaction of a connection whose database
    // is known: a frame's header appended, and the page that follows it.
    const bool header = w->writing && !w->page_next && n == frame_header &&
                        (w->end < 0 || offset == w->end);
    const bool page = w->page_next && offset == gathered_end;
    if ((!header && !page) || (header && !w->gathered.empty() && offset != gathered_end) ||
        !gather(w, data, n, offset)) {
      int rc = flush(w);
      if (rc == SQLITE_OK) rc = w->below->pMethods->xWrite(w->below, data, amount, offset);
      // The WAL's header: SQLite starts the log over, and frames follow it.
      const bool restart = offset == 0 && n == wal_header;
      if (rc != SQLITE_OK) {
        w->end = -1;
      } else if (restart || offset + amount > w->end) {
        w->end = offset + amount;
      }
      return rc;
    }
    w->end = offset + amount;
    if (header) {
      w->page_next = true;
      // Bytes 4-7: the database's size in pages after the commit, 0 in any other frame.
      const auto* bytes = static_cast<const unsigned char*>(data);
      w->commit_next = (bytes[4] | bytes[5] | bytes[6] | bytes[7]) != 0;
      return SQLITE_OK;
    }
    const bool commit = w->commit_next;
    w->page_next = w->commit_next = false;
    return commit ? flush(w) : SQLITE_OK;
  }

  // The WAL's write lock, taken or released on its database: a transaction
  // begins (its first frame is where it appends) or ends. Frames gathered at its
  // end were never committed (a transaction larger than the cache, rolled
  // back): written later, they would land on frames another connection commits.
  // Without shared memory (EXCLUSIVE locking mode) SQLite takes no such lock, and
  // nothing is gathered.
  static int shm_lock(sqlite3_file* f, int offset, int n, int flags) {
    const bool writer = offset <= write_lock && write_lock < offset + n &&
                        (flags & SQLITE_SHM_EXCLUSIVE) != 0 && of(f)->peer != nullptr;
    if (writer && (flags & SQLITE_SHM_UNLOCK) != 0) turn(of(f)->peer, false);
    const int rc = below(f)->pMethods->xShmLock(below(f), offset, n, flags);
    if (writer && rc == SQLITE_OK && (flags & SQLITE_SHM_LOCK) != 0) turn(of(f)->peer, true);
    return rc;
  }

  static constexpr sqlite3_io_methods wal_methods = {
      1,  // version 1: SQLite maps no WAL file to memory, nor asks it for shared memory
      &close,
      [](sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
        const int rc = flush(of(f));
        return rc != SQLITE_OK ? rc : below(f)->pMethods->xRead(below(f), out, amount, offset);
      },
      &write,
      [](sqlite3_file* f, sqlite3_int64 size) {
        const int rc = flush(of(f));
        return rc != SQLITE_OK ? rc : below(f)->pMethods->xTruncate(below(f), size);
      },
      [](sqlite3_file* f, int flags) {
        const int rc = flush(of(f));
        return rc != SQLITE_OK ? rc : below(f)->pMethods->xSync(below(f), flags);
      },
      [](sqlite3_file* f, sqlite3_int64* size) {
        const int rc = flush(of(f));
        return rc != SQLITE_OK ? rc : below(f)->pMethods->xFileSize(below(f), size);
      },
      [](sqlite3_file* f, int lock) { return below(f)->pMethods->xLock(below(f), lock); },
      [](sqlite3_file* f, int lock) { return below(f)->pMethods->xUnlock(below(f), lock); },
      [](sqlite3_file* f, int* out) {
        return below(f)->pMethods->xCheckReservedLock(below(f), out);
      },
      [](sqlite3_file* f, int op, void* arg) {
        const int rc = flush(of(f));
        return rc != SQLITE_OK ? rc : below(f)->pMethods->xFileControl(below(f), op, arg);
      },
      [](sqlite3_file* f) { return below(f)->pMethods->xSectorSize(below(f)); },
      [](sqlite3_file* f) { return below(f)->pMethods->xDeviceCharacteristics(below(f)); },
      nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
  };

  // A database file: every call passed down, the write lock watched (shm_lock).
  static constexpr sqlite3_io_methods database_methods = {
      3,
      &close,
      [](sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
        return below(f)->pMethods->xRead(below(f), out, amount, offset);
      },
      [](sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
        return below(f)->pMethods->xWrite(below(f), data, amount, offset);
      },
      [](sqlite3_file* f, sqlite3_int64 size) {
        return below(f)->pMethods->xTruncate(below(f), size);
      },
      [](sqlite3_file* f, int flags) { return below(f)->pMethods->xSync(below(f), flags); },
      [](sqlite3_file* f, sqlite3_int64* size) {
        return below(f)->pMethods->xFileSize(below(f), size);
      },
      [](sqlite3_file* f, int lock) { return below(f)->pMethods->xLock(below(f), lock); },
      [](sqlite3_file* f, int lock) { return below(f)->pMethods->xUnlock(below(f), lock); },
      [](sqlite3_file* f, int* out) {
        return below(f)->pMethods->xCheckReservedLock(below(f), out);
      },
      [](sqlite3_file* f, int op, void* arg) {
        return below(f)->pMethods->xFileControl(below(f), op, arg);
      },
      [](sqlite3_file* f) { return below(f)->pMethods->xSectorSize(below(f)); },
      [](sqlite3_file* f) { return below(f)->pMethods->xDeviceCharacteristics(below(f)); },
      [](sqlite3_file* f, int region, int size, int extend, void volatile** out) {
        return below(f)->pMethods->xShmMap(below(f), region, size, extend, out);
      },
      &shm_lock,
      [](sqlite3_file* f) { below(f)->pMethods->xShmBarrier(below(f)); },
      [](sqlite3_file* f, int delete_flag) {
        return below(f)->pMethods->xShmUnmap(below(f), delete_flag);
      },
      [](sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
        return below(f)->pMethods->xFetch(below(f), offset, amount, out);
      },
      [](sqlite3_file* f, sqlite3_int64 offset, void* page) {
        return below(f)->pMethods->xUnfetch(below(f), offset, page);
      },
  };
};

}  // namespace detail
UNLOC_END_NAMESPACE
