# Exec-model TLS accesses the linker moves to thunks must keep the flags
# and every register the instruction does not write, also on a thread's
# first access (the runtime's slow path). Each function returns 0 when all
# is as the instruction alone would leave it, else a bit per difference.
        .section .tbss,"awT",@nobits
        .p2align 3
        .globl  regs_tv
regs_tv:
        .zero   16

        .text
        .globl  tls_flags_kept
        .type   tls_flags_kept, @function
# int tls_flags_kept(int a, int b): a < b, with TLS accesses between the
# compare and the setl.
tls_flags_kept:
        cmpl    %esi, %edi
        movq    regs_tv@gottpoff(%rip), %rax
        movl    %fs:regs_tv@tpoff+4, %edx
        movl    %edx, %fs:(%rax)
        setl    %al
        movzbl  %al, %eax
        ret
        .size   tls_flags_kept, .-tls_flags_kept

        .globl  tls_registers_kept
        .type   tls_registers_kept, @function
# int tls_registers_kept(void)
tls_registers_kept:
        pushq   %rbx
        pushq   %r12
        movq    $0x1111, %rcx
        movq    $0x2222, %rdx
        movq    $0x3333, %rsi
        movq    $0x4444, %rdi
        movq    $0x5555, %r8
        movq    $0x6666, %r9
        movq    $0x7777, %r10
        movq    $0x8888, %r11
        movq    $0x9999, %rbx
        movq    %rcx, %xmm0
        movq    %rdx, %xmm7
        movq    %r8, %xmm15
        movq    $0x7fff, %rax
        movq    %rax, %r12
        movq    regs_tv@gottpoff(%rip), %rax
        movl    $0x5a5a, %fs:regs_tv@tpoff+8
        xorl    %eax, %eax
        cmpq    $0x1111, %rcx
        setne   %al
        cmpq    $0x2222, %rdx
        jne     1f
        cmpq    $0x3333, %rsi
        jne     1f
        cmpq    $0x4444, %rdi
        jne     1f
        cmpq    $0x5555, %r8
        jne     1f
        cmpq    $0x6666, %r9
        jne     1f
        cmpq    $0x7777, %r10
        jne     1f
        cmpq    $0x8888, %r11
        jne     1f
        cmpq    $0x9999, %rbx
        jne     1f
        movq    %xmm0, %rcx
        cmpq    $0x1111, %rcx
        jne     1f
        movq    %xmm7, %rcx
        cmpq    $0x2222, %rcx
        jne     1f
        movq    %xmm15, %rcx
        cmpq    $0x5555, %rcx
        jne     1f
        cmpl    $0x5a5a, %fs:regs_tv@tpoff+8
        jne     1f
        jmp     2f
1:      orl     $2, %eax
2:      popq    %r12
        popq    %rbx
        ret
        .size   tls_registers_kept, .-tls_registers_kept
        .section .note.GNU-stack,"",@progbits
