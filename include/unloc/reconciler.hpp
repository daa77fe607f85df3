#pragma once

/// @file
/// Every Access Event exactly once: webhook deliveries and the access log,
/// reconciled. Webhooks are best effort (late, out of order, repeated, or
/// lost while the endpoint is down); the access log holds the last 30 days.
/// The reconciler takes events from both and hands each to its handler once.

#include <unloc/access_event.hpp>
#include <unloc/access_log_query.hpp>
#include <unloc/detail/os.hpp>
#include <unloc/error.hpp>
#include <unloc/event_store.hpp>
#include <unloc/options.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/version.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

UNLOC_BEGIN_NAMESPACE

/// How an event is handed over to the handler.
struct handover {
  event_source source = event_source::webhook;  ///< Where it came from this time.
  /// True when an earlier handover of the event was never resolved (the
  /// process was killed while handing it over, or the store's claim lease ran
  /// out): the handler may have confirmed it then. Look for its id in your own
  /// records before acting on it again.
  bool possibly_repeated = false;
};

/// What `reconciler::offer` did with an event.
enum class offer_outcome {
  handed_over,     ///< New: the handler took it and confirmed it.
  duplicate,       ///< Handed over before (by either source): not again.
  /// Being handed over right now by another call: answer 503 with Retry-After.
  /// Also when the handler ran past the store's claim lease and another call
  /// took the claim over meanwhile (counted in `lease_overruns`): that call decides.
  held_elsewhere,
};

/// How a `reconciler` reads the access log.
struct reconciler_options {
  /// How far before the checkpoint each read starts again, to catch events
  /// reported late (the phone app was offline): an event reported more than
  /// this long after it happened is missed by the log reads (a webhook
  /// delivery of it is still handed over).
  std::chrono::milliseconds overlap = std::chrono::hours(24);
  /// How long the lease on reading one access log lasts: a store shared by
  /// several processes lets one read a log at a time, and the next takes over
  /// this long after the reader stopped renewing it. A read renews it each
  /// half of this time.
  std::chrono::milliseconds log_lease = std::chrono::minutes(2);
  /// Hand each event over through `event_store::record_once(event, source,
  /// work)`: on the SQLite store the handler then runs inside the transaction
  /// that marks the event, so that one commit settles it, not two (a claim,
  /// then the mark), and a stop leaves no claim behind (nor a record of the
  /// handler's run: the event is handed over again, not flagged possibly
  /// repeated). It runs there with the store's write lock held, on whichever
  /// thread commits: for a quick handler (printing a line) that calls neither
  /// the store nor `offer` (refused with an error). Other stores claim first,
  /// as without it.
  bool handler_in_store_transaction = false;
  /// Who reads, in the store's lease (unique per process, such as
  /// `host:pid`). Empty: `reconciler:` and 16 random hex digits.
  std::string lease_holder;
  /// The wall clock, replaceable in tests.
  std::function<timestamp()> clock = [] {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now());
  };
};

/// What one read of an access log found.
struct log_read_report {
  std::string scope;     ///< The log: a Lock's id, or `"project"`.
  timestamp from{};      ///< The read's start (zero when it read all 30 days).
  timestamp to{};        ///< Its end: the new checkpoint, unless a call or a lease held it.
  std::size_t read = 0;  ///< Events read.
  std::size_t recovered = 0;  ///< Of those, events handed over (not handed over before).
  /// Events another call was handing over meanwhile: the checkpoint stays, and
  /// the next read offers them again.
  std::size_t held_elsewhere = 0;
  /// Another reconciler holds the lease on reading this log (it read nothing),
  /// or took it over during the read: the checkpoint stays.
  bool lease_held_elsewhere = false;
};

/// Counts since the reconciler was made.
struct reconciler_counts {
  std::uint64_t from_webhook = 0;        ///< Events handed over from webhook deliveries.
  std::uint64_t from_access_log = 0;     ///< Events handed over from the access log.
  std::uint64_t duplicate_deliveries = 0;  ///< Webhook deliveries of events handed over before.
  std::uint64_t already_handed_over = 0;   ///< Log events handed over before (the overlap).
  std::uint64_t held_elsewhere = 0;        ///< Offers of an event another call was handing over.
  std::uint64_t handler_failures = 0;      ///< Events the handler did not confirm.
  std::uint64_t possibly_repeated = 0;     ///< Events handed over again after a stop left them in doubt.
  /// Handler runs that outlasted the store's claim lease: the claim was taken
  /// over meanwhile, so the handler's answer was not recorded.
  std::uint64_t lease_overruns = 0;
};

/// Hands each Access Event to `handler` exactly once, whether it comes from a
/// webhook delivery (`offer`), the access log (`read_log`), or both, across
/// restarts of the process when the store keeps its state (`sqlite_event_store`,
/// `postgresql_event_store`, or a store over your database).
///
/// For each event it claims the event in the store, calls the handler, then
/// marks the event handled when the handler confirmed it (returned true), or
/// releases it when the handler returned false or threw: `offer` then returns
/// an error (answer the delivery with 503, so that it is retried) and
/// `read_log` stops without moving the checkpoint (the next read offers the
/// event again). If the process is killed while the handler runs, the event
/// is handed over again after the restart, flagged `handover::possibly_repeated`
/// (with `reconciler_options::handler_in_store_transaction` on the SQLite store,
/// not flagged: nothing recorded the first run). A store that marks the event
/// inside the handler's own transaction never leaves an event in doubt.
///
/// Thread safety: `offer`, `read_log` and `counts` may be called from many
/// threads at once, and from inside the handler (except `read_log` of the
/// scope being read; and with `handler_in_store_transaction` on the SQLite
/// store, only `counts`: an `offer` there is refused with an error). The
/// handler may run on several threads at once for different events, never for
/// the same event: the store's claim is the only exclusion, so a slow handler
/// delays no other event (one that outlives the store's claim lease loses the
/// claim: see `reconciler_counts::lease_overruns`).
/// Reads of one log scope run one at a time.
class reconciler {
 public:
  /// Takes an event and how it came; true confirms it.
  using handler_function = std::function<bool(const access_event&, const handover&)>;

  /// A reconciler over `store` (not null) handing events to `handler`. An empty
  /// `handler` does no work beyond the store's record (a database store's
  /// events table): each new event is then recorded with
  /// `event_store::record_once` (one transaction on the SQLite and PostgreSQL
  /// stores, never left in doubt).
  reconciler(std::shared_ptr<event_store> store, handler_function handler,
             reconciler_options options = {})
      : store_(std::move(store)), handler_(std::move(handler)), options_(std::move(options)) {
    if (options_.lease_holder.empty()) options_.lease_holder = random_holder();
  }

  /// Offers an event (from a webhook delivery, normally): handed over when new.
  /// An error when the handler did not confirm it or the store failed.
  [[nodiscard]] result<offer_outcome> offer(const access_event& event,
                                            event_source source = event_source::webhook) {
    if (!handler_) return settled(store_->record_once(event, source), source);
    return offer_to_handler(event, source);
  }

  /// Reads the access log `query` names (a Lock's, or the Project's) from its
  /// checkpoint minus the overlap (all 30 days the first time) up to now, offers
  /// every event, then moves the checkpoint to now. `query.from` and `query.to`
  /// are set here. On an error the checkpoint stays; the next read repeats.
  /// Only while holding the store's lease on the log (taken first, renewed
  /// during the read): otherwise it reads nothing and says so
  /// (`log_read_report::lease_held_elsewhere`).
  template <typename Client>
  [[nodiscard]] result<log_read_report> read_log(const Client& api, access_log_query query,
                                                 const call_options& per_call = {}) {
    log_read_report report;
    report.scope = query.lock_id ? query.lock_id->to_string() : std::string("project");
    const std::lock_guard<std::mutex> reading(scope_mutex(report.scope));
    auto lease = store_->acquire_log_lease(report.scope, options_.lease_holder, options_.log_lease);
    if (!lease) return lease.error();
    if (!*lease) {
      report.lease_held_elsewhere = true;
      return report;
    }
    report.to = options_.clock();
    timestamp renewed = report.to;
    auto checkpoint = store_->checkpoint(report.scope);
    if (!checkpoint) return checkpoint.error();
    query.from.reset();
    if (*checkpoint) {
      report.from = (std::min)(**checkpoint, report.to) - options_.overlap;
      query.from = report.from;
    }
    query.to = report.to;
    std::optional<error> failed;
    auto read = api.read_access_log(
        query,
        [&](access_event&& event) {
          if (options_.clock() - renewed >= options_.log_lease / 2) {
            auto again = store_->acquire_log_lease(report.scope, options_.lease_holder,
                                                   options_.log_lease);
            if (!again) {
              failed = again.error();
              return false;
            }
            if (!*again || **again != **lease) {
              report.lease_held_elsewhere = true;  // taken over: stop, the new holder reads
              return false;
            }
            renewed = options_.clock();
          }
          ++report.read;
          auto offered = offer(event, event_source::access_log);
          if (!offered) {
            failed = offered.error();
            return false;
          }
          if (*offered == offer_outcome::handed_over) ++report.recovered;
          if (*offered == offer_outcome::held_elsewhere) ++report.held_elsewhere;
          return true;
        },
        per_call);
    if (failed) return *failed;
    if (report.lease_held_elsewhere) return report;
    if (!read) return read.error();
    if (report.held_elsewhere == 0) {
      auto saved = store_->save_checkpoint(report.scope, report.to, **lease);
      if (!saved) return saved.error();
      report.lease_held_elsewhere = *saved == settle_status::not_owner;
    }
    return report;
  }

  /// Counts since the reconciler was made (each count read atomically).
  [[nodiscard]] reconciler_counts counts() const noexcept {
    reconciler_counts c;
    c.from_webhook = counts_.from_webhook;
    c.from_access_log = counts_.from_access_log;
    c.duplicate_deliveries = counts_.duplicate_deliveries;
    c.already_handed_over = counts_.already_handed_over;
    c.held_elsewhere = counts_.held_elsewhere;
    c.handler_failures = counts_.handler_failures;
    c.possibly_repeated = counts_.possibly_repeated;
    c.lease_overruns = counts_.lease_overruns;
    return c;
  }

 private:
  // offer() with a handler: the store's record_once with the handler as its work. By
  // default that is event_store's own claim, handler, then mark or release (called
  // without virtual dispatch); with handler_in_store_transaction, the store's override,
  // which may run the handler inside its transaction and more than once (its shared
  // commit failed): the last run's answer counts, and an event is counted possibly
  // repeated once.
  result<offer_outcome> offer_to_handler(const access_event& event, event_source source) {
    struct run {
      reconciler& self;
      const access_event& event;
      event_source source{};
      std::optional<error> declined;  // the handler's last answer, when it did not confirm
      bool confirmed = false;         // ... when it did
      bool repeated = false;
      bool operator()(bool possibly_repeated) {
        if (possibly_repeated && !std::exchange(repeated, true)) {
          ++self.counts_.possibly_repeated;
        }
        auto answer = self.call_handler(event, handover{source, possibly_repeated});
        confirmed = answer.has_value();
        if (confirmed) {
          declined.reset();
        } else {
          declined = answer.error();
        }
        return confirmed;
      }
    } handing{*this, event, source, std::nullopt};
    // One pointer captured: the work fits in std::function's own buffer, no allocation.
    const event_store::record_work work = [h = &handing](bool possibly_repeated) {
      return (*h)(possibly_repeated);
    };
    auto recorded = [&]() -> result<handle_status> {
      try {
        return options_.handler_in_store_transaction
                   ? store_->record_once(event, source, work)
                   : store_->event_store::record_once(event, source, work);
      } catch (...) {
        // A store that throws (against its contract) after the handler declined: still counted.
        if (handing.declined) ++counts_.handler_failures;
        throw;
      }
    }();
    if (!recorded && handing.declined) {
      ++counts_.handler_failures;
      return *handing.declined;
    }
    // Held elsewhere after the handler confirmed: its claim was taken over meanwhile.
    if (recorded && *recorded == handle_status::held_elsewhere && handing.confirmed) {
      ++counts_.lease_overruns;
    }
    return settled(recorded, source);
  }

  // What a store's record_once did, counted as offer() counts it.
  result<offer_outcome> settled(const result<handle_status>& recorded, event_source source) {
    if (!recorded) return recorded.error();
    const bool webhook = source == event_source::webhook;
    switch (*recorded) {
      case handle_status::handled:
        ++(webhook ? counts_.from_webhook : counts_.from_access_log);
        return offer_outcome::handed_over;
      case handle_status::already_handled:
        ++(webhook ? counts_.duplicate_deliveries : counts_.already_handed_over);
        return offer_outcome::duplicate;
      case handle_status::held_elsewhere: break;
    }
    ++counts_.held_elsewhere;
    return offer_outcome::held_elsewhere;
  }

  result<void> call_handler(const access_event& event, const handover& how) {
    try {
      if (handler_(event, how)) return {};
      return make_error(error_category::internal,
                        "the handler did not confirm event " + event.id.to_string(), "handler");
    } catch (const std::exception& e) {
      return make_error(error_category::internal,
                        "the handler failed on event " + event.id.to_string() + ": " + e.what(),
                        "handler");
    } catch (...) {
      return make_error(error_category::internal,
                        "the handler failed on event " + event.id.to_string(), "handler");
    }
  }

  static std::string random_holder() {
    unsigned char bytes[8] = {};
    if (!detail::random_bytes(bytes, sizeof bytes)) {
      // Unique enough within one machine; the lease's fencing token keeps it safe anyway.
      const auto t = std::chrono::steady_clock::now().time_since_epoch().count();
      for (std::size_t i = 0; i < sizeof bytes; ++i) {
        bytes[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(t) >> (8 * i));
      }
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string holder = "reconciler:";
    for (const unsigned char b : bytes) {
      holder += hex[b >> 4];
      holder += hex[b & 0xf];
    }
    return holder;
  }

  // The lock of one log scope, made on first use and kept (a project has few
  // scopes); a map's elements never move.
  std::mutex& scope_mutex(const std::string& scope) {
    const std::lock_guard<std::mutex> lock(scopes_mutex_);
    return scopes_[scope];
  }

  struct atomic_counts {
    std::atomic<std::uint64_t> from_webhook{0};
    std::atomic<std::uint64_t> from_access_log{0};
    std::atomic<std::uint64_t> duplicate_deliveries{0};
    std::atomic<std::uint64_t> already_handed_over{0};
    std::atomic<std::uint64_t> held_elsewhere{0};
    std::atomic<std::uint64_t> handler_failures{0};
    std::atomic<std::uint64_t> possibly_repeated{0};
    std::atomic<std::uint64_t> lease_overruns{0};
  };

  std::shared_ptr<event_store> store_;
  handler_function handler_;
  reconciler_options options_;
  atomic_counts counts_;
  std::mutex scopes_mutex_;  // only around scopes_
  std::map<std::string, std::mutex> scopes_;
};

UNLOC_END_NAMESPACE
