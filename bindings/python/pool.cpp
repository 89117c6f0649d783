// pool.cpp - labyrinth._core.Pool: one labyrinth_pool and the Page objects
// handed out from it.
//
// Pool.close() is refused with Busy while calls without the GIL run on the
// pool, rings on it are open or buffer exports of its pages are alive; the
// GIL is released around calls that may sleep (pool creation, WAIT
// allocations).
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "binding.hpp"
#include "internal_api.hpp"

namespace labpy {

labyrinth_pool *open_pool(const PoolRef &ps) {
  if (ps->closed()) raise_status(LABYRINTH_ERR_INVALID, "the pool is closed");
  return ps->pool;
}

PoolState::~PoolState() {
  if (!pool) return;
  // Nothing in Python can reach the arena any more (every Page, ring and run
  // holds this state), so blocks still allocated (pages handed to threads
  // that never freed them) cannot be used after the unmap.
  if (labyrinth_pool_destroy(pool) != LABYRINTH_OK)
    labyrinth_pool_destroy_ex(pool, LABYRINTH_DESTROY_FORCE);
  pool = nullptr;
}

namespace {

struct PoolPy {
  PoolRef ps;
};

}  // namespace

PoolRef pool_ref(py::handle pool) {
  if (!py::isinstance<PoolPy>(pool))
    throw py::type_error(std::string("pool must be a labyrinth.Pool, got ") + Py_TYPE(pool.ptr())->tp_name);
  return pool.cast<PoolPy &>().ps;
}

namespace {

// ---------------------------------------------------------------- Pool

PoolPy *pool_new(const py::object &size_bytes, const py::dict &kw) {
  labyrinth_pool_options o = pool_options(size_bytes, kw);
  labyrinth_pool *pool = nullptr;
  labyrinth_status st;
  std::string msg;
  {
    // Reserving and pinning a large arena takes a while: let other threads run.
    py::gil_scoped_release nogil;
    st = labyrinth_pool_create(&o, &pool);
    if (st != LABYRINTH_OK) msg = labyrinth_last_error_message();
  }
  // Strict pinning refused by the memlock limit: its own class, Python's fix.
  if (st == LABYRINTH_ERR_NOMEM && (o.flags & LABYRINTH_POOL_PIN) &&
      msg.find("RLIMIT_MEMLOCK") != std::string::npos)
    raise_memlock(msg, "pass pin=\"auto\" (the default: pin when the limit allows, else run "
                       "unpinned) or pin=False, or raise the limit (ulimit -l)");
  if (st != LABYRINTH_OK) raise_status(st, msg);
  auto ps = std::make_shared<PoolState>();
  ps->pool = pool;
  void *base = nullptr;
  size_t size = 0;
  labyrinth_pool_arena(pool, &base, &size);
  ps->base = reinterpret_cast<uintptr_t>(base);
  ps->size_bytes = size;
  return new PoolPy{std::move(ps)};
}

uint32_t timeout_ms(const py::object &timeout) {
  if (timeout.is_none()) return LABYRINTH_TIMEOUT_INFINITE;
  const double t = seconds_arg(timeout, "timeout");
  double ms = std::ceil(t * 1000.0);
  if (ms >= double(LABYRINTH_TIMEOUT_INFINITE)) return LABYRINTH_TIMEOUT_INFINITE - 1;
  return static_cast<uint32_t>(ms);
}

py::object pool_alloc(PoolPy &self, const py::object &order_arg, const py::object &atomic,
                      const py::object &wait_arg, const py::object &zero,
                      const py::object &exclusive, const py::object &timeout) {
  labyrinth_pool *pool = open_pool(self.ps);
  const long long order = int_arg(order_arg, "order", 0, LABYRINTH_MAX_ORDER);
  const bool wait = bool_arg(wait_arg, "wait");
  labyrinth_gfp gfp = 0;
  if (bool_arg(atomic, "atomic")) gfp |= LABYRINTH_GFP_ATOMIC;
  if (wait) gfp |= LABYRINTH_GFP_WAIT;
  if (bool_arg(zero, "zero")) gfp |= LABYRINTH_GFP_ZERO;
  if (bool_arg(exclusive, "exclusive")) gfp |= LABYRINTH_GFP_EXCLUSIVE;
  uint32_t tmo = wait ? timeout_ms(timeout) : 0;
  void *page = nullptr;
  labyrinth_status st;
  if (wait) {
    // May sleep until another thread frees a page: that thread may need the GIL.
    ActiveCall active(self.ps);
    std::string msg;
    {
      py::gil_scoped_release nogil;
      st = labyrinth_alloc_pages(pool, static_cast<unsigned>(order), gfp, tmo, &page);
      if (st != LABYRINTH_OK) msg = labyrinth_last_error_message();
    }
    if (st != LABYRINTH_OK) raise_status(st, msg);
  } else {
    st = labyrinth_alloc_pages(pool, static_cast<unsigned>(order), gfp, tmo, &page);
    if (st != LABYRINTH_OK) raise_last(st);
  }
  return make_page(self.ps, page, static_cast<unsigned>(order));
}

py::object pool_alloc_page(PoolPy &self) {
  labyrinth_pool *pool = open_pool(self.ps);
  void *page = labyrinth_alloc_page_inline(pool);
  if (!page) raise_last(labyrinth_last_status());
  return make_page(self.ps, page, 0);
}

py::dict pool_stats(PoolPy &self) {
  labyrinth_pool *pool = open_pool(self.ps);
  labyrinth_stats s;
  std::memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  check(labyrinth_pool_stats(pool, &s));
  py::dict d;
  d["total_pages"] = s.total_pages;
  d["free_pages"] = s.free_pages;
  d["reserve_pages"] = s.reserve_pages;
  d["reserve_target"] = s.reserve_target;
  d["cached_pages"] = s.cached_pages;
  d["allocated_pages"] = s.allocated_pages;
  d["inflight_pages"] = s.inflight_pages;
  d["orphaned_pages"] = s.orphaned_pages;
  py::tuple fb(LABYRINTH_MAX_ORDER + 1);
  for (int i = 0; i <= LABYRINTH_MAX_ORDER; ++i) fb[i] = py::int_(s.free_blocks[i]);
  d["free_blocks"] = fb;
  d["shared_free_pages"] = s.shared_free_pages;
  d["reserve_uses"] = s.reserve_uses;
  py::tuple fl(LABYRINTH_STATUS_COUNT);
  for (int i = 0; i < LABYRINTH_STATUS_COUNT; ++i) fl[i] = py::int_(s.failures[i]);
  d["failures"] = fl;
  d["waits"] = s.waits;
  d["timeouts"] = s.timeouts;
  d["refills"] = s.refills;
  d["drains"] = s.drains;
  d["pressure_events"] = s.pressure_events;
  d["watermark_min"] = s.watermark_min;
  d["watermark_low"] = s.watermark_low;
  d["watermark_high"] = s.watermark_high;
  d["thread_caches_in_use"] = s.thread_caches_in_use;
  d["metadata_bytes"] = s.metadata_bytes;
  d["flags"] = s.flags;
  d["huge_pages"] = s.huge_pages;
  d["cache_reclaims"] = s.cache_reclaims;
  d["reclaimed_pages"] = s.reclaimed_pages;
  return d;
}

void pool_close(PoolPy &self, bool force) {
  auto &ps = *self.ps;
  if (ps.closed()) return;
  if (int n = ps.active.load(); n > 0)
    raise_status(LABYRINTH_ERR_BUSY, "cannot close the pool: " + std::to_string(n) +
                                         " call(s) on it are running in other threads "
                                         "(WAIT allocations, workload runs, ring waits)");
  if (ps.rings > 0)
    raise_status(LABYRINTH_ERR_BUSY, "cannot close the pool: " + std::to_string(ps.rings) +
                                         " ring(s) on it are open; close them first");
  if (ps.exports > 0)
    raise_status(LABYRINTH_ERR_BUSY, "cannot close the pool: " + std::to_string(ps.exports) +
                                         " buffer export(s) of its pages are alive "
                                         "(memoryview, numpy array, ...); release them first");
  check(labyrinth_pool_destroy_ex(ps.pool, force ? LABYRINTH_DESTROY_FORCE : 0));
  ps.pool = nullptr;
  for (auto &kv : ps.live) kv.second->live = false;
  ps.live.clear();
}

uintptr_t addr_arg(const py::object &a) {
  // Accept an int or a Page.
  if (py::isinstance<PageObj>(a)) return a.cast<PageObj &>().address();
  if (PyBool_Check(a.ptr()) || !PyIndex_Check(a.ptr()))
    throw py::type_error(std::string("address must be an int or a labyrinth.Page, got ") +
                         Py_TYPE(a.ptr())->tp_name);
  return static_cast<uintptr_t>(uint_arg(a, "address", UINTPTR_MAX));
}

void pool_free_address(PoolPy &self, const py::object &address, const py::object &order) {
  labyrinth_pool *pool = open_pool(self.ps);
  uintptr_t a = addr_arg(address);
  auto it = self.ps->live.find(a);
  if (!order.is_none()) {
    // A stated order is checked by the library, Page object or not.
    const long long o = int_arg(order, "order", 0, LABYRINTH_MAX_ORDER);
    // A Page of that order frees through the Page (buffer exports are
    // checked); anything else is the library's to free or refuse (a Page of
    // another order: refused, its block stays allocated).
    if (it == self.ps->live.end() || it->second->order != static_cast<unsigned>(o))
      return check(labyrinth_free_pages_order(pool, reinterpret_cast<void *>(a), static_cast<unsigned>(o)));
    return page_free(*it->second);
  }
  if (it != self.ps->live.end()) return page_free(*it->second);
  check(labyrinth_free_pages(pool, reinterpret_cast<void *>(a)));
}

size_t pool_reclaim_orphans(PoolPy &self) {
  labyrinth_pool *pool = open_pool(self.ps);
  // An orphan may still have a Page object here (its thread exited while
  // Python held it). Reclaiming one whose memory is exported (a view alive)
  // would let the view see recycled memory: the core refuses if any of those
  // blocks is an orphan, and reclaims nothing then.
  std::vector<const void *> exported;
  for (const auto &entry : self.ps->live)
    if (entry.second->exports > 0) exported.push_back(entry.second->ptr);
  size_t n = 0;
  labyrinth_status st =
      lab::pool_reclaim_orphans_unless_in_use(pool, exported.data(), exported.size(), &n);
  if (st == LABYRINTH_ERR_BUSY)
    raise_status(st, std::string(labyrinth_last_error_message()) +
                         " (buffer exports of its Page are alive: release them "
                         "first, e.g. memoryview.release(), del the array)");
  check(st);
  // Page objects whose block went back to the pool are freed now.
  for (auto it = self.ps->live.begin(); it != self.ps->live.end();) {
    if (labyrinth_page_info(pool, reinterpret_cast<void *>(it->first), nullptr, nullptr) != LABYRINTH_OK) {
      it->second->live = false;
      it = self.ps->live.erase(it);
    } else {
      ++it;
    }
  }
  labyrinth_clear_last_error();
  return n;
}

py::object pool_page_at(PoolPy &self, const py::object &address) {
  auto it = self.ps->live.find(addr_arg(address));
  if (it == self.ps->live.end()) return py::none();
  return py::cast(it->second, py::return_value_policy::reference);
}

void pool_transfer_address(PoolPy &self, const py::object &address, const py::object &owner) {
  const uintptr_t a = addr_arg(address);
  const labyrinth_owner o = uint_arg(owner, "owner", LABYRINTH_OWNER_MAX);
  check(labyrinth_page_transfer(open_pool(self.ps), reinterpret_cast<void *>(a), o));
}

py::tuple pool_page_info(PoolPy &self, const py::object &address) {
  labyrinth_owner o = 0;
  unsigned order = 0;
  check(labyrinth_page_info(open_pool(self.ps), reinterpret_cast<const void *>(addr_arg(address)), &o,
                            &order));
  return py::make_tuple(o, order);
}

}  // namespace

void register_pool(py::module_ &m) {
  py::class_<PoolPy>(m, "Pool", R"doc(
A page pool: one arena of size_bytes and everything that manages it.
See labyrinth.Pool for the documentation of every argument.)doc")
      .def(py::init(&pool_new), py::arg("size_bytes"), py::arg("options") = py::dict())
      .def("alloc_page", &pool_alloc_page)
      .def("alloc", &pool_alloc, py::arg("order") = 0, py::kw_only(), py::arg("atomic") = true,
           py::arg("wait") = false, py::arg("zero") = false, py::arg("exclusive") = true,
           py::arg("timeout") = py::none())
      .def("_stats", &pool_stats)
      .def("trim", [](PoolPy &self) { check(labyrinth_pool_trim(open_pool(self.ps))); })
      .def("reclaim_orphans", &pool_reclaim_orphans,
           "Give back to the pool every exclusive block whose owner thread has exited "
           "(orphans); returns how many. Raises Busy, and reclaims nothing, while a buffer "
           "export (memoryview, numpy array, ...) of an orphan's Page is alive; exports of "
           "other pages do not matter.")
      .def("close", [](PoolPy &self, const py::object &force) { pool_close(self, bool_arg(force, "force")); },
           py::arg("force") = false)
      .def_property_readonly("closed", [](const PoolPy &self) { return self.ps->closed(); })
      .def_property_readonly("base", [](const PoolPy &self) { return self.ps->base; })
      .def_property_readonly("size_bytes", [](const PoolPy &self) { return self.ps->size_bytes; })
      .def_property_readonly("live_pages", [](const PoolPy &self) { return self.ps->live.size(); })
      .def_property_readonly("exports", [](const PoolPy &self) { return self.ps->exports; })
      .def("page_at", &pool_page_at, py::arg("address"))
      .def("free_address", &pool_free_address, py::arg("address"), py::arg("order") = py::none(),
           R"doc(
Free the block at an address (an int or a Page). With `order`, the block
must be exactly of that order (InvalidArgument otherwise, and nothing
changes), as labyrinth_free_pages_order() checks.)doc")
      .def("transfer_address", &pool_transfer_address, py::arg("address"), py::arg("owner"))
      .def("page_info", &pool_page_info, py::arg("address"));
}

}  // namespace labpy
