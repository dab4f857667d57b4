/* The bytecode VM: a dense switch (a jump table at -O2) over opcodes. */
#include <math.h>
#include <stdio.h>

#include "calc.h"

enum { STACK_MAX = 256 };

static int read16(const uint8_t *p) { return p[0] | (p[1] << 8); }

int vm_run(const Chunk *ch, Symtab *st, StrBuf *out, long *steps) {
    double stack[STACK_MAX];
    int sp = 0;
    int pc = 0;
    unsigned char *written = NULL;
    (void)written;
    *steps = 0;
    for (;;) {
        if (++*steps > calc_config.max_steps * 4L) {
            calc_error("vm", "step limit");
            return 1;
        }
        if (sp >= STACK_MAX - 8) {
            calc_error("vm", "stack overflow");
            return 1;
        }
        Opcode op = (Opcode)ch->code[pc++];
        switch (op) {
        case OP_CONST:
            stack[sp++] = ch->consts[read16(&ch->code[pc])];
            pc += 2;
            break;
        case OP_LOAD:
            stack[sp++] = symtab_get(st, read16(&ch->code[pc]));
            pc += 2;
            break;
        case OP_STORE:
            symtab_set(st, read16(&ch->code[pc]), stack[--sp]);
            pc += 2;
            break;
        case OP_ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case OP_SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case OP_MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case OP_DIV:
            sp--;
            if (stack[sp] == 0) {
                calc_error("vm", "division by zero");
                return 1;
            }
            stack[sp - 1] /= stack[sp];
            break;
        case OP_MOD:
            sp--;
            stack[sp - 1] = stack[sp] == 0 ? 0 : fmod(stack[sp - 1], stack[sp]);
            break;
        case OP_LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case OP_GT: sp--; stack[sp - 1] = stack[sp - 1] > stack[sp]; break;
        case OP_EQ: sp--; stack[sp - 1] = stack[sp - 1] == stack[sp]; break;
        case OP_NEG: stack[sp - 1] = -stack[sp - 1]; break;
        case OP_CALL: {
            const Builtin *b = builtin_at(ch->code[pc]);
            int n = ch->code[pc + 1];
            pc += 2;
            if (!b || b->arity != n) {
                calc_error("vm", b ? "wrong arity" : "unknown function");
                return 1;
            }
            sp -= n;
            stack[sp] = b->fn(&stack[sp]);
            sp++;
            break;
        }
        case OP_PRINT:
            format_number(out, stack[--sp]);
            strbuf_putc(out, '\n');
            break;
        case OP_JMP:
            pc = read16(&ch->code[pc]);
            break;
        case OP_JZ:
            pc = stack[--sp] == 0 ? read16(&ch->code[pc]) : pc + 2;
            break;
        case OP_POP:
            sp--;
            break;
        case OP_HALT:
            return 0;
        default:
            calc_error("vm", "bad opcode");
            return 1;
        }
    }
}
