// Happens-before annotations for ThreadSanitizer builds; no code otherwise.
//
// Debian's oneTBB is not built with -fsanitize=thread, so TSan cannot see how
// TBB hands work between threads (a pipeline token passed from one filter to the
// next, a task_group's tasks and its wait). Code that hands data across TBB
// task boundaries marks them on a shared address: TsanRelease when a task has
// done its part, TsanAcquire before a task (or the caller after wait) uses what
// others did. TSan then orders the two sides as TBB does, and still reports
// real races between tasks that run concurrently.
#pragma once

#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace sluice {

inline void TsanAcquire([[maybe_unused]] void* addr) {
#if defined(__SANITIZE_THREAD__)
  __tsan_acquire(addr);
#endif
}

inline void TsanRelease([[maybe_unused]] void* addr) {
#if defined(__SANITIZE_THREAD__)
  __tsan_release(addr);
#endif
}

}  // namespace sluice
