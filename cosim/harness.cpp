// tensorweave fast whole-program harness: a Verilator model of `tensorweave_top` (class Vtop) driven
// from C++ with no Python per cycle.
//
//   harness JOB.in [JOB.in ...]       each job writes JOB.in.out next to it
//
// Job file: one ASCII header line "tw-job base=B insns=N max_cycles=M stall=S seed=R profile=0|1 bytes=K
// waves=PATH|-",
// then K bytes: the DRAM image placed at byte address B. Per job the harness builds a fresh model,
// resets it, programs the registers over AXI4-Lite (DRAM_BASE, INSN_COUNT, CTRL.start), runs until
// irq (done or error) or M cycles (watchdog), reads the status registers and writes
// "tw-result status=done|error|timeout cycles=... error_code=... error_insn=... load_pc=...
// compute_pc=... store_pc=... unit_state=... digest=... sim_cycles=... violations=... profile=..." plus the final
// K bytes of DRAM. The AXI4 slave (DRAM model) answers INCR bursts, stalls ready/valid at random
// with probability S percent, and counts protocol violations (non-INCR bursts, 4 KiB crossings,
// accesses outside the image); the first few are printed to stderr.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "Vtop.h"
#include "contract.h"  // register map and bit meanings, generated from contract/
#include "verilated.h"
#ifdef TW_WAVES
#include "verilated_vcd_c.h"
#endif

// Verilator spells the "__" of Amaranth's flattened port names (dram__araddr) as "___05F".
#define DRAM(signal) dram___05F##signal
#define CTRL(signal) ctrl___05F##signal

namespace {

// --- moving bytes in and out of Verilator signals of any width -------------------------------
template <typename T>
void sig_set(T& sig, const uint8_t* src, int nbytes) {
    uint64_t v = 0;
    std::memcpy(&v, src, nbytes < 8 ? nbytes : 8);
    sig = static_cast<T>(v);
}
template <std::size_t N>
void sig_set(VlWide<N>& sig, const uint8_t* src, int nbytes) {
    for (std::size_t i = 0; i < N; ++i) {
        uint32_t w = 0;
        int left = nbytes - static_cast<int>(4 * i);
        if (left > 0) std::memcpy(&w, src + 4 * i, left < 4 ? left : 4);
        sig[i] = w;
    }
}
template <typename T>
void sig_get(const T& sig, uint8_t* dst, int nbytes) {
    uint64_t v = static_cast<uint64_t>(sig);
    std::memcpy(dst, &v, nbytes < 8 ? nbytes : 8);
}
template <std::size_t N>
void sig_get(const VlWide<N>& sig, uint8_t* dst, int nbytes) {
    for (std::size_t i = 0; i < N; ++i) {
        uint32_t w = sig[i];
        int left = nbytes - static_cast<int>(4 * i);
        if (left > 0) std::memcpy(dst + 4 * i, &w, left < 4 ? left : 4);
    }
}
template <typename T>
uint64_t sig_u64(const T& sig) { return static_cast<uint64_t>(sig); }
template <std::size_t N>
uint64_t sig_u64(const VlWide<N>& sig) { return sig[0] | (N > 1 ? static_cast<uint64_t>(sig[1]) << 32 : 0); }

struct Job {
    std::string path;
    uint64_t base = 0, insns = 0, max_cycles = 0, stall = 0, seed = 1, profile = 0;
    std::string waves;
    std::vector<uint8_t> dram;
};

struct Burst {
    uint64_t addr;
    unsigned beats, size, done;
};

struct Rng {  // xorshift64*: reproducible stalls per job seed
    uint64_t s;
    uint64_t next() { s ^= s >> 12; s ^= s << 25; s ^= s >> 27; return (s * 2685821657736338717ULL) >> 11; }
    bool percent(uint64_t p) { return p && next() % 100 < p; }
};

class Bench {
  public:
    explicit Bench(Job& job) : job_(job), rng_{job.seed * 0x9E3779B97F4A7C15ULL + 1} {
        ctx_ = std::make_unique<VerilatedContext>();
        top_ = std::make_unique<Vtop>(ctx_.get());
        // The bus width is the width of rdata: QData for 64 bits, VlWide<N> (4N bytes) above.
        bus_ = static_cast<int>(sizeof(top_->DRAM(rdata)));
#ifdef TW_WAVES
        if (job.waves != "-" && !job.waves.empty()) {
            ctx_->traceEverOn(true);
            trace_ = std::make_unique<VerilatedVcdC>();
            top_->trace(trace_.get(), 99);
            trace_->open(job.waves.c_str());
        }
#endif
    }
    ~Bench() {
#ifdef TW_WAVES
        if (trace_) trace_->close();
#endif
        top_->final();
    }

    uint64_t cycles = 0, violations = 0;

    void reset() {
        top_->rst = 1;
        for (int i = 0; i < 4; ++i) tick();
        top_->rst = 0;
        tick();
    }

    void lite_write(uint32_t addr, uint32_t data) {
        lite_ = {true, addr, data};
        while (lite_.active) tick();
    }
    uint32_t lite_read(uint32_t addr) {
        lite_ = {false, addr, 0};
        while (lite_.active) tick();
        return lite_.data;
    }
    bool irq() const { return top_->irq; }

    // One clock cycle: drive the slave outputs, settle, see which handshakes fire, clock, update.
    void tick() {
        drive();
        top_->clk = 0;
        top_->eval();
        dump(0);
        bool ar = top_->DRAM(arvalid) && top_->DRAM(arready);
        bool r = top_->DRAM(rvalid) && top_->DRAM(rready);
        bool aw = top_->DRAM(awvalid) && top_->DRAM(awready);
        bool w = top_->DRAM(wvalid) && top_->DRAM(wready);
        bool b = top_->DRAM(bvalid) && top_->DRAM(bready);
        Burst ar_burst{top_->DRAM(araddr), static_cast<unsigned>(top_->DRAM(arlen)) + 1u,
                       1u << top_->DRAM(arsize), 0};
        if (ar) check_burst(ar_burst, top_->DRAM(arburst), "read");
        Burst aw_burst{top_->DRAM(awaddr), static_cast<unsigned>(top_->DRAM(awlen)) + 1u,
                       1u << top_->DRAM(awsize), 0};
        if (aw) check_burst(aw_burst, top_->DRAM(awburst), "write");
        std::vector<uint8_t> wdata(bus_);
        uint64_t wstrb = 0;
        bool wlast = false;
        if (w) {
            sig_get(top_->DRAM(wdata), wdata.data(), bus_);
            wstrb = sig_u64(top_->DRAM(wstrb));
            wlast = top_->DRAM(wlast);
        }
        bool lite_aw = top_->CTRL(awvalid) && top_->CTRL(awready);
        bool lite_w = top_->CTRL(wvalid) && top_->CTRL(wready);
        bool lite_b = top_->CTRL(bvalid) && top_->CTRL(bready);
        bool lite_ar = top_->CTRL(arvalid) && top_->CTRL(arready);
        bool lite_r = top_->CTRL(rvalid) && top_->CTRL(rready);
        uint32_t lite_rdata = top_->CTRL(rdata);

        top_->clk = 1;
        top_->eval();
        ctx_->timeInc(1);
        dump(1);
        ++cycles;
        r_hold_ = top_->DRAM(rvalid) && !r;
        b_hold_ = top_->DRAM(bvalid) && !b;

        if (ar) reads_.push_back(ar_burst);
        if (r) {
            Burst& head = reads_.front();
            if (++head.done == head.beats) reads_.pop_front();
        }
        if (aw) writes_.push_back(aw_burst);
        if (w) {
            if (writes_.size() <= write_beats_done_) {
                violation("write data beat before its address");
            } else {
                Burst& head = writes_[write_beats_done_];
                uint64_t addr = beat_addr(head);
                uint64_t lane0 = addr & ~static_cast<uint64_t>(bus_ - 1);
                for (int i = 0; i < bus_; ++i)
                    if (wstrb >> i & 1) store_byte(lane0 + i, wdata[i]);
                ++head.done;
                bool last = head.done == head.beats;
                if (last != wlast) violation("wlast does not mark the burst's last beat");
                if (last) {
                    ++write_beats_done_;
                    pending_b_ += 1;
                }
            }
        }
        if (b) {
            writes_.pop_front();
            --write_beats_done_;
            --pending_b_;
        }
        if (lite_.active) {
            if (lite_.write) {
                if (lite_aw) lite_.aw_done = true;
                if (lite_w) lite_.w_done = true;
                if (lite_b) lite_.active = false;
            } else {
                if (lite_ar) lite_.aw_done = true;
                if (lite_r) {
                    lite_.data = lite_rdata;
                    lite_.active = false;
                }
            }
        }
        top_->clk = 0;
        top_->eval();
    }

  private:
    struct Lite {
        bool write = false;
        uint32_t addr = 0, data = 0;
        bool active = false, aw_done = false, w_done = false;
        Lite() = default;
        Lite(bool w, uint32_t a, uint32_t d) : write(w), addr(a), data(d), active(true) {}
    };

    void drive() {
        bool stall = job_.stall != 0;
        top_->DRAM(arready) = !(stall && rng_.percent(job_.stall));
        top_->DRAM(awready) = !(stall && rng_.percent(job_.stall));
        top_->DRAM(wready) = !(stall && rng_.percent(job_.stall));
        // R: the head burst's next beat, unless stalled.
        // A valid once raised stays up until its handshake (AXI rule); only new beats are delayed.
        bool rvalid = !reads_.empty() && (r_hold_ || !(stall && rng_.percent(job_.stall)));
        top_->DRAM(rvalid) = rvalid;
        if (rvalid) {
            const Burst& head = reads_.front();
            uint64_t lane0 = beat_addr(head) & ~static_cast<uint64_t>(bus_ - 1);
            std::vector<uint8_t> data(bus_);
            bool ok = false;  // beats entirely outside the image answer SLVERR
            for (int i = 0; i < bus_; ++i) ok |= load_byte(lane0 + i, &data[i]);
            if (!ok) violation("read outside the DRAM image");
            sig_set(top_->DRAM(rdata), data.data(), bus_);
            top_->DRAM(rlast) = head.done + 1 == head.beats;
            top_->DRAM(rresp) = ok ? 0 : 2;
        } else {
            top_->DRAM(rlast) = 0;
            top_->DRAM(rresp) = 0;
        }
        top_->DRAM(bvalid) = pending_b_ > 0 && (b_hold_ || !(stall && rng_.percent(job_.stall)));
        top_->DRAM(bresp) = 0;
        // AXI4-Lite master.
        bool lw = lite_.active && lite_.write, lr = lite_.active && !lite_.write;
        top_->CTRL(awvalid) = lw && !lite_.aw_done;
        top_->CTRL(awaddr) = lite_.addr;
        top_->CTRL(wvalid) = lw && !lite_.w_done;
        top_->CTRL(wdata) = lite_.data;
        top_->CTRL(wstrb) = 0xF;
        top_->CTRL(bready) = lw && lite_.aw_done && lite_.w_done;
        top_->CTRL(arvalid) = lr && !lite_.aw_done;
        top_->CTRL(araddr) = lite_.addr;
        top_->CTRL(rready) = lr && lite_.aw_done;
    }

    uint64_t beat_addr(const Burst& b) const {
        if (b.done == 0) return b.addr;
        return (b.addr & ~static_cast<uint64_t>(b.size - 1)) + static_cast<uint64_t>(b.done) * b.size;
    }
    void check_burst(const Burst& b, unsigned kind, const char* what) {
        if (kind != 1) violation(std::string(what) + " burst type is not INCR");
        if (static_cast<int>(b.size) > bus_) violation(std::string(what) + " beat size exceeds the bus");
        uint64_t last = (b.addr & ~static_cast<uint64_t>(b.size - 1)) + static_cast<uint64_t>(b.beats) * b.size - 1;
        if ((b.addr >> 12) != (last >> 12)) {
            char msg[160];
            std::snprintf(msg, sizeof msg, "%s burst at 0x%llx of %u x %u bytes crosses a 4 KiB boundary", what,
                          static_cast<unsigned long long>(b.addr), b.beats, b.size);
            violation(msg);
        }
    }
    bool load_byte(uint64_t addr, uint8_t* out) {
        if (addr < job_.base || addr - job_.base >= job_.dram.size()) {
            *out = 0;
            return false;
        }
        *out = job_.dram[addr - job_.base];
        return true;
    }
    void store_byte(uint64_t addr, uint8_t value) {
        if (addr < job_.base || addr - job_.base >= job_.dram.size()) {
            char msg[96];
            std::snprintf(msg, sizeof msg, "write to 0x%llx outside the DRAM image",
                          static_cast<unsigned long long>(addr));
            violation(msg);
            return;
        }
        job_.dram[addr - job_.base] = value;
    }
    void violation(const std::string& what) {
        if (violations++ < 5) std::fprintf(stderr, "%s: AXI: %s (cycle %llu)\n", job_.path.c_str(), what.c_str(),
                                           static_cast<unsigned long long>(cycles));
    }
    void dump(int phase) {
#ifdef TW_WAVES
        if (trace_) trace_->dump(cycles * 2 + phase);
#else
        (void)phase;
#endif
    }

    Job& job_;
    int bus_;
    Rng rng_;
    std::unique_ptr<VerilatedContext> ctx_;
    std::unique_ptr<Vtop> top_;
#ifdef TW_WAVES
    std::unique_ptr<VerilatedVcdC> trace_;
#endif
    std::deque<Burst> reads_, writes_;
    std::size_t write_beats_done_ = 0;
    int pending_b_ = 0;
    bool r_hold_ = false, b_hold_ = false;
    Lite lite_;
};

bool read_job(const std::string& path, Job& job) {
    std::ifstream in(path, std::ios::binary);
    std::string header;
    if (!in || !std::getline(in, header) || header.rfind("tw-job ", 0) != 0) return false;
    std::istringstream fields(header.substr(7));
    std::string kv;
    uint64_t bytes = 0;
    job.waves = "-";
    while (fields >> kv) {
        auto eq = kv.find('=');
        if (eq == std::string::npos) return false;
        std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
        if (k == "waves") { job.waves = v; continue; }
        uint64_t n = std::strtoull(v.c_str(), nullptr, 0);
        if (k == "base") job.base = n;
        else if (k == "insns") job.insns = n;
        else if (k == "max_cycles") job.max_cycles = n;
        else if (k == "stall") job.stall = n;
        else if (k == "seed") job.seed = n;
        else if (k == "profile") job.profile = n;
        else if (k == "bytes") bytes = n;
    }
    job.dram.resize(bytes);
    in.read(reinterpret_cast<char*>(job.dram.data()), static_cast<std::streamsize>(bytes));
    job.path = path;
    return static_cast<uint64_t>(in.gcount()) == bytes;
}

int run_job(Job& job) {
    Bench bench(job);
    bench.reset();
    uint32_t digest = bench.lite_read(TW_REG_CONFIG_DIGEST);
    bench.lite_write(TW_REG_DRAM_BASE_LO, static_cast<uint32_t>(job.base));
    bench.lite_write(TW_REG_DRAM_BASE_HI, static_cast<uint32_t>(job.base >> 32));
    bench.lite_write(TW_REG_INSN_COUNT, static_cast<uint32_t>(job.insns));
    uint64_t start = bench.cycles;
    bench.lite_write(TW_REG_CTRL, TW_CTRL_START);
    const char* status = "timeout";
    // With profile=1, UNIT_STATE is read back to back over AXI4-Lite while the run goes on; each
    // sample stands for the cycles since the previous one (per unit: busy, token wait, command wait).
    uint64_t profile[TW_UNITS][TW_UNIT_STATE_BITS + 1] = {};
    uint64_t last = bench.cycles;
    while (bench.cycles - start < job.max_cycles) {
        if (bench.irq()) break;
        if (job.profile) {
            uint32_t units = bench.lite_read(TW_REG_UNIT_STATE);
            uint64_t weight = bench.cycles - last;
            last = bench.cycles;
            for (int u = 0; u < TW_UNITS; ++u) {
                uint32_t bits = units >> (TW_UNIT_STATE_BITS * u) & ((1u << TW_UNIT_STATE_BITS) - 1);
                for (int b = 0; b < TW_UNIT_STATE_BITS; ++b)
                    if (bits >> b & 1) profile[u][b] += weight;
                if (!bits) profile[u][TW_UNIT_STATE_BITS] += weight;
            }
        } else {
            bench.tick();
        }
    }
    uint32_t st = bench.lite_read(TW_REG_STATUS);
    if (st & TW_STATUS_ERROR) status = "error";
    else if (st & TW_STATUS_DONE) status = "done";
    uint64_t hw_cycles =
        bench.lite_read(TW_REG_CYCLES_LO) | static_cast<uint64_t>(bench.lite_read(TW_REG_CYCLES_HI)) << 32;
    uint32_t code = bench.lite_read(TW_REG_ERROR_CODE), insn = bench.lite_read(TW_REG_ERROR_INSN);
    uint32_t lpc = bench.lite_read(TW_REG_LOAD_PC), cpc = bench.lite_read(TW_REG_COMPUTE_PC);
    uint32_t spc = bench.lite_read(TW_REG_STORE_PC);
    uint32_t units = bench.lite_read(TW_REG_UNIT_STATE);
    std::ofstream out(job.path + ".out", std::ios::binary);
    out << "tw-result status=" << status << " cycles=" << hw_cycles << " error_code=" << code
        << " error_insn=" << insn << " load_pc=" << lpc << " compute_pc=" << cpc << " store_pc=" << spc
        << " unit_state=" << units << " status_reg=" << st << " digest=" << digest
        << " sim_cycles=" << bench.cycles << " violations=" << bench.violations << " profile=";
    for (int u = 0; u < TW_UNITS; ++u)
        for (int b = 0; b <= TW_UNIT_STATE_BITS; ++b)
            out << profile[u][b] << (u == TW_UNITS - 1 && b == TW_UNIT_STATE_BITS ? "" : ",");
    out << "\n";
    out.write(reinterpret_cast<const char*>(job.dram.data()), static_cast<std::streamsize>(job.dram.size()));
    return out ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s JOB.in [JOB.in ...]\n", argv[0]);
        return 2;
    }
    int failures = 0;
    for (int i = 1; i < argc; ++i) {
        Job job;
        if (!read_job(argv[i], job)) {
            std::fprintf(stderr, "%s: not a readable tw-job file\n", argv[i]);
            ++failures;
            continue;
        }
        failures += run_job(job);
    }
    return failures ? 1 : 0;
}
