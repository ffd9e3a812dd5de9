// cpuid leaves: 1 (ECX: fma 12, osxsave 27, avx 28, f16c 29), 7.0 (EBX: avx2 5, avx512f 16, avx512dq 17,
// avx512bw 30, avx512vl 31; ECX: avx512_vnni 11), 7.1 (EAX: avx_vnni 4); xgetbv(0) XCR0: bits 1-2 (xmm,
// ymm state) and 5-7 (opmask, zmm state). Caches: leaf 4 (Intel) or 0x8000001D (AMD), else AMD's legacy
// 0x80000005/6 (L1d KB in ECX[31:24]; L2 KB in ECX[31:16]; L3 in 512 KB units in EDX[31:18]).
// Brand string: 0x80000002-4.
#include "kernels/cpu_features.h"

#include <cpuid.h>

#include <cstring>

namespace qat {

namespace {

struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned sub = 0) {
  Regs r;
  if (!__get_cpuid_count(leaf, sub, &r.a, &r.b, &r.c, &r.d)) r = Regs{};
  return r;
}

uint64_t xgetbv0() {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

bool bit(unsigned v, int i) { return (v >> i) & 1u; }

// Deterministic cache parameters (same encoding in Intel leaf 4 and AMD leaf 0x8000001D).
void read_caches(unsigned leaf, CpuFeatures* f) {
  for (unsigned sub = 0; sub < 16; sub++) {
    Regs r = cpuid(leaf, sub);
    unsigned type = r.a & 0x1f, level = (r.a >> 5) & 0x7;
    if (type == 0) break;
    int64_t bytes = int64_t((r.b >> 22) + 1) * (((r.b >> 12) & 0x3ff) + 1) * ((r.b & 0xfff) + 1) * (int64_t(r.c) + 1);
    if (level == 1 && type == 1) f->l1d_bytes = bytes;
    if (level == 2) f->l2_bytes = bytes;
    if (level == 3) f->l3_bytes = bytes;
  }
}

CpuFeatures detect() {
  CpuFeatures f;
  Regs l0 = cpuid(0), l1 = cpuid(1), l7 = cpuid(7, 0), l7s1 = cpuid(7, 1);
  const bool osxsave = bit(l1.c, 27) && bit(l1.c, 28);
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_ymm = (xcr0 & 0x6) == 0x6, os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;
  if (l0.a >= 7 && os_ymm) {
    f.avx2 = bit(l7.b, 5);
    f.fma = bit(l1.c, 12);
    f.f16c = bit(l1.c, 29);
    f.avxvnni = bit(l7s1.a, 4);
  }
  if (l0.a >= 7 && os_zmm) {
    f.avx512f = bit(l7.b, 16);
    f.avx512dq = bit(l7.b, 17);
    f.avx512bw = bit(l7.b, 30);
    f.avx512vl = bit(l7.b, 31);
    f.avx512vnni = bit(l7.c, 11);
  }
  char brand[49] = {};
  if (cpuid(0x80000000).a >= 0x80000004)
    for (unsigned i = 0; i < 3; i++) {
      Regs r = cpuid(0x80000002 + i);
      std::memcpy(brand + 16 * i, &r, 16);
    }
  f.brand = brand;
  while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  char vendor[13] = {};
  std::memcpy(vendor, &l0.b, 4);
  std::memcpy(vendor + 4, &l0.d, 4);
  std::memcpy(vendor + 8, &l0.c, 4);
  if (std::strcmp(vendor, "AuthenticAMD") == 0 && cpuid(0x80000000).a >= 0x8000001d)
    read_caches(0x8000001d, &f);
  else if (l0.a >= 4)
    read_caches(4, &f);
  if (f.l2_bytes == 0 && cpuid(0x80000000).a >= 0x80000006) {  // legacy AMD leaves (some VMs zero 0x8000001D)
    f.l1d_bytes = int64_t(cpuid(0x80000005).c >> 24) << 10;
    f.l2_bytes = int64_t(cpuid(0x80000006).c >> 16) << 10;
    f.l3_bytes = int64_t(cpuid(0x80000006).d >> 18) << 19;
  }
  return f;
}

}  // namespace

std::string CpuFeatures::flags() const {
  std::string s;
  auto add = [&s](bool on, const char* name) {
    if (on) s += (s.empty() ? "" : " ") + std::string(name);
  };
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512vl, "avx512vl");
  add(avx512dq, "avx512dq");
  add(avx512vnni, "avx512vnni");
  add(avxvnni, "avxvnni");
  return s.empty() ? "baseline x86-64" : s;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

}  // namespace qat
