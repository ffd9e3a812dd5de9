// The one place a kernel table is chosen. Each ISA directory declares its kernels in its own namespace
// (kernels/<isa>/<isa>.h; the AVX-512 / VNNI sources are built twice, natively and on SIMDe, into two
// namespaces); this file fills one Kernels struct per ISA and picks the active one: the best the CPU
// has, or QAT_ISA / select_isa(). Families an ISA does not implement come from the ISA below it.
#include <atomic>
#include <cstdlib>
#include <mutex>

#include "kernels/cpu_features.h"
#include "kernels/kernels.h"
#include "kernels/pack.h"
#include "kernels/scalar/scalar.h"
#include "kernels/ref/quant.h"
#include "src/util/error.h"

// Each ISA header declares its kernels in namespace qat::QAT_KERNEL_NS.
#define QAT_KERNEL_NS avx2
#include "kernels/avx2/avx2.h"
#undef QAT_KERNEL_NS
#define QAT_KERNEL_NS avxvnni
#include "kernels/avxvnni/avxvnni.h"
#undef QAT_KERNEL_NS
#define QAT_KERNEL_NS avxvnni_simde
#include "kernels/avxvnni/avxvnni.h"
#undef QAT_KERNEL_NS
#define QAT_KERNEL_NS avx512
#include "kernels/avx512/avx512.h"
#undef QAT_KERNEL_NS
#define QAT_KERNEL_NS avx512_simde
#include "kernels/avx512/avx512.h"
#undef QAT_KERNEL_NS
#define QAT_KERNEL_NS avx512vnni
#include "kernels/avx512vnni/avx512vnni.h"
#undef QAT_KERNEL_NS
#define QAT_KERNEL_NS avx512vnni_simde
#include "kernels/avx512vnni/avx512vnni.h"
#undef QAT_KERNEL_NS

namespace qat {

namespace {

const char* const kIsaNames[kNumIsas] = {"scalar", "avx2", "avx512", "avx512vnni", "avxvnni",
                                         "avx512_simde", "avx512vnni_simde", "avxvnni_simde"};

Kernels scalar_table() {
  Kernels k{};
  k.isa = Isa::scalar;
  k.quant = {scalar::quantize_q8_0, scalar::quantize_per_token, quantize_learned};  // kernels/ref's
  k.q4_0 = {1, pack::q4_0_panel_bytes<1>, pack::pack_q4_0<1>, scalar::gemv_q4_0, scalar::gemm_q4_0, nullptr};
  k.q8_0 = {1, pack::q8_0_panel_bytes<1>, pack::pack_q8_0<1, 0>, scalar::gemv_q8_0, scalar::gemm_q8_0, nullptr};
  k.s8_pc = {1, pack::s8_panel_bytes<1>, pack::pack_s8<1, 0>, scalar::gemv_s8_pc, scalar::gemm_s8_pc,
             scalar::gemm_s8_pc_s32};
  k.tq = {1, pack::tq_panel_bytes<1>, pack::pack_tq<1>, scalar::gemv_tq, scalar::gemm_tq, nullptr};
  k.f32 = {scalar::gemv_f32, scalar::gemm_f32};
  k.rows = {scalar::exp_f32,  scalar::weighted_rows, scalar::head_scores, scalar::head_weighted, scalar::softmax,
            scalar::swiglu, scalar::swiglu_backward};
  k.peak = {scalar::peak_f32_fma, scalar::peak_int8, nullptr, scalar::peak_read};
  return k;
}

// The four integer families of namespace NS on panels of NR rows; OFF = 128 for the VNNI kernels
// (their u8 operand is the int8 weight code + 128; q4_0 and tq store u8 codes + 8 / + 1 in any table).
#define QAT_INT_FAMILIES(k, NS, NR, OFF)                                                                  \
  k.q4_0 = {NR, pack::q4_0_panel_bytes<NR>, pack::pack_q4_0<NR>, NS::gemv_q4_0, NS::gemm_q4_0, nullptr};    \
  k.q8_0 = {NR, pack::q8_0_panel_bytes<NR>, pack::pack_q8_0<NR, OFF>, NS::gemv_q8_0, NS::gemm_q8_0, nullptr}; \
  k.s8_pc = {NR, pack::s8_panel_bytes<NR>, pack::pack_s8<NR, OFF>, NS::gemv_s8_pc, NS::gemm_s8_pc,          \
             NS::gemm_s8_pc_s32};                                                                          \
  k.tq = {NR, pack::tq_panel_bytes<NR>, pack::pack_tq<NR>, NS::gemv_tq, NS::gemm_tq, nullptr};

Kernels avx2_table() {
  Kernels k = scalar_table();
  k.quant = {avx2::quantize_q8_0, avx2::quantize_per_token, avx2::quantize_learned};
  QAT_INT_FAMILIES(k, avx2, 8, 0)
  k.f32 = {avx2::gemv_f32, avx2::gemm_f32};
  k.rows = {avx2::exp_f32,  avx2::weighted_rows, avx2::head_scores, avx2::head_weighted, avx2::softmax, avx2::swiglu,
            avx2::swiglu_backward};
  k.peak = {avx2::peak_f32_fma, avx2::peak_int8_exact, avx2::peak_int8_i16, avx2::peak_read};
  return k;
}

// AVX-VNNI = AVX2 + vpdpbusd on ymm: quantization, f32 and row functions from AVX2.
Kernels avxvnni_table() {
  Kernels k = avx2_table();
  QAT_INT_FAMILIES(k, avxvnni, 8, 128)
  k.peak.int8_exact = avxvnni::peak_int8_exact;
  return k;
}

// AVX-512BW and AVX-512 VNNI: integer kernels on zmm; quantization, f32 and row functions from AVX2.
Kernels avx512_table() {
  Kernels k = avx2_table();
  QAT_INT_FAMILIES(k, avx512, 16, 0)
  k.peak = {avx512::peak_f32_fma, avx512::peak_int8_exact, avx512::peak_int8_i16, avx512::peak_read};
  return k;
}
Kernels avx512vnni_table() {
  Kernels k = avx512_table();
  QAT_INT_FAMILIES(k, avx512vnni, 16, 128)
  k.peak.int8_exact = avx512vnni::peak_int8_exact;
  return k;
}

// SIMDe builds run on any CPU, so what they do not implement comes from scalar.
Kernels avxvnni_simde_table() {
  Kernels k = scalar_table();
  QAT_INT_FAMILIES(k, avxvnni_simde, 8, 128)
  k.peak.int8_exact = avxvnni_simde::peak_int8_exact;
  return k;
}
Kernels avx512_simde_table() {
  Kernels k = scalar_table();
  QAT_INT_FAMILIES(k, avx512_simde, 16, 0)
  k.peak = {avx512_simde::peak_f32_fma, avx512_simde::peak_int8_exact, avx512_simde::peak_int8_i16,
            avx512_simde::peak_read};
  return k;
}
Kernels avx512vnni_simde_table() {
  Kernels k = avx512_simde_table();
  QAT_INT_FAMILIES(k, avx512vnni_simde, 16, 128)
  k.peak.int8_exact = avx512vnni_simde::peak_int8_exact;
  return k;
}

struct Tables {
  Kernels t[kNumIsas];
  bool built[kNumIsas] = {};
  Tables() {
    auto put = [this](Isa isa, Kernels k) {
      k.isa = isa;
      k.name = kIsaNames[int(isa)];
      t[int(isa)] = k;
      built[int(isa)] = true;
    };
    put(Isa::scalar, scalar_table());
    put(Isa::avx2, avx2_table());
    put(Isa::avxvnni, avxvnni_table());
    put(Isa::avxvnni_simde, avxvnni_simde_table());
    put(Isa::avx512, avx512_table());
    put(Isa::avx512vnni, avx512vnni_table());
    put(Isa::avx512_simde, avx512_simde_table());
    put(Isa::avx512vnni_simde, avx512vnni_simde_table());
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

std::atomic<const Kernels*> g_active{nullptr};

const Kernels& from_environment() {
  const char* env = std::getenv("QAT_ISA");
  if (!env || !*env) return kernels_for(best_isa());
  Isa isa = parse_isa(env);
  if (!isa_supported(isa))
    fail("QAT_ISA=", env, ": this CPU (", cpu_features().brand, ": ", cpu_features().flags(), ") cannot run it");
  return kernels_for(isa);
}

}  // namespace

const char* isa_name(Isa isa) { return kIsaNames[int(isa)]; }

Isa parse_isa(const std::string& name) {
  std::string valid;
  for (int i = 0; i < kNumIsas; i++) {
    if (name == kIsaNames[i]) return Isa(i);
    valid += (i ? ", " : "") + std::string(kIsaNames[i]);
  }
  throw UsageError(str("unknown ISA '", name, "': expected one of ", valid));
}

std::vector<Isa> all_isas() {
  std::vector<Isa> v;
  for (int i = 0; i < kNumIsas; i++) v.push_back(Isa(i));
  return v;
}

bool isa_runs_on(Isa isa, const CpuFeatures& f) {
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  const bool avx512 = avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
  switch (isa) {
    case Isa::scalar:
    case Isa::avx512_simde:
    case Isa::avx512vnni_simde:
    case Isa::avxvnni_simde: return true;
    case Isa::avx2: return avx2;
    case Isa::avx512: return avx512;
    case Isa::avx512vnni: return avx512 && f.avx512vnni;
    case Isa::avxvnni: return avx2 && f.avxvnni;
  }
  return false;
}

bool isa_supported(Isa isa) { return tables().built[int(isa)] && isa_runs_on(isa, cpu_features()); }

Isa best_isa() {
  for (Isa isa : {Isa::avx512vnni, Isa::avx512, Isa::avxvnni, Isa::avx2})
    if (isa_supported(isa)) return isa;
  return Isa::scalar;
}

const Kernels& kernels_for(Isa isa) {
  if (!isa_supported(isa))
    fail("ISA ", isa_name(isa), " is not available: this CPU (", cpu_features().brand, ") has ",
         cpu_features().flags(), tables().built[int(isa)] ? "" : " and the table is not built");
  return tables().t[int(isa)];
}

const Kernels& kernels() {
  const Kernels* k = g_active.load(std::memory_order_acquire);
  if (!k) {
    static std::once_flag once;
    std::call_once(once, [] {
      const Kernels* chosen = &from_environment();
      const Kernels* expected = nullptr;
      g_active.compare_exchange_strong(expected, chosen);  // keep a select_isa() that came first
    });
    k = g_active.load(std::memory_order_acquire);
  }
  return *k;
}

void select_isa(Isa isa) { g_active.store(&kernels_for(isa), std::memory_order_release); }
void select_isa(const std::string& name) { select_isa(parse_isa(name)); }

}  // namespace qat
