// What the machine and this process hold in memory: the budget a loader or a training run checks a
// size against before it allocates (models/train/memory.h, models/gguf_model.cpp), and the measured
// peaks the binaries print. Linux: /proc and the cgroup v2 files; 0 where they cannot be read.
#pragma once
#include <string>

namespace qat {

// Memory this process may still take: MemAvailable of /proc/meminfo, or less where a cgroup limit
// says so; *source names which (for the refusal). 0 when neither can be read.
double available_memory_bytes(std::string* source);
double current_rss_bytes();  // VmRSS of /proc/self/status (0 when unreadable)
double peak_rss_bytes();     // getrusage's ru_maxrss: the high-water mark of this process

// "123.4 MiB" / "12.3 GiB" / "1.2 TiB": one size with a unit that keeps it readable.
std::string human_bytes(double bytes);

}  // namespace qat
