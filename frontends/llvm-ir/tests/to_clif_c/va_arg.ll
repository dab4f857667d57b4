; The va_arg instruction (clang lowers va_arg itself on x86-64; other
; producers do not), over register and overflow-area arguments.
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

%va = type { i32, i32, ptr, ptr }

define double @mix(i32 %n, ...) {
entry:
  %ap = alloca %va, align 16
  call void @llvm.va_start.p0(ptr %ap)
  br label %loop
loop:
  %i = phi i32 [ 0, %entry ], [ %i1, %body ]
  %acc = phi double [ 0.0, %entry ], [ %acc1, %body ]
  %more = icmp slt i32 %i, %n
  br i1 %more, label %body, label %done
body:
  %x = va_arg ptr %ap, i64
  %y = va_arg ptr %ap, double
  %z = va_arg ptr %ap, i32
  %xf = sitofp i64 %x to double
  %zf = sitofp i32 %z to double
  %t = fmul double %y, %xf
  %u = fadd double %t, %zf
  %acc1 = fadd double %acc, %u
  %i1 = add i32 %i, 1
  br label %loop
done:
  call void @llvm.va_end.p0(ptr %ap)
  ret double %acc
}

define double @call_mix(i64 %k) {
  %r = call double (i32, ...) @mix(i32 6, i64 1, double 1.5, i32 -1, i64 2, double 2.5, i32 -2, i64 3, double 3.5, i32 -3, i64 4, double 4.5, i32 -4, i64 5, double 5.5, i32 -5, i64 %k, double 9.5, i32 7)
  ret double %r
}

declare void @llvm.va_start.p0(ptr)
declare void @llvm.va_end.p0(ptr)
