/* Opcode names and the disassembler (operand printers through function
 * pointers). */
#include "calc.h"

typedef void (*OperandPrinter)(const Chunk *ch, int at, StrBuf *sb);

static void print_none(const Chunk *ch, int at, StrBuf *sb) {
    (void)ch;
    (void)at;
    (void)sb;
}

static void print_const(const Chunk *ch, int at, StrBuf *sb) {
    int idx = ch->code[at] | (ch->code[at + 1] << 8);
    strbuf_printf(sb, " #%d (", idx);
    format_number(sb, ch->consts[idx]);
    strbuf_putc(sb, ')');
}

static void print_slot(const Chunk *ch, int at, StrBuf *sb) {
    strbuf_printf(sb, " $%d", ch->code[at] | (ch->code[at + 1] << 8));
}

static void print_target(const Chunk *ch, int at, StrBuf *sb) {
    strbuf_printf(sb, " -> %04d", ch->code[at] | (ch->code[at + 1] << 8));
}

static void print_call(const Chunk *ch, int at, StrBuf *sb) {
    const Builtin *b = builtin_at(ch->code[at]);
    strbuf_printf(sb, " %s/%d", b ? b->name : "?", ch->code[at + 1]);
}

static const struct {
    const char *name;
    int operand_bytes;
    OperandPrinter print;
} info[OP_COUNT] = {
    [OP_CONST] = {"const", 2, print_const}, [OP_LOAD] = {"load", 2, print_slot},
    [OP_STORE] = {"store", 2, print_slot},  [OP_ADD] = {"add", 0, print_none},
    [OP_SUB] = {"sub", 0, print_none},      [OP_MUL] = {"mul", 0, print_none},
    [OP_DIV] = {"div", 0, print_none},      [OP_MOD] = {"mod", 0, print_none},
    [OP_LT] = {"lt", 0, print_none},        [OP_GT] = {"gt", 0, print_none},
    [OP_EQ] = {"eq", 0, print_none},        [OP_NEG] = {"neg", 0, print_none},
    [OP_CALL] = {"call", 2, print_call},    [OP_PRINT] = {"print", 0, print_none},
    [OP_JMP] = {"jmp", 2, print_target},    [OP_JZ] = {"jz", 2, print_target},
    [OP_POP] = {"pop", 0, print_none},      [OP_HALT] = {"halt", 0, print_none},
};

const char *opcode_name(Opcode op) { return (unsigned)op < OP_COUNT ? info[op].name : "?"; }

int opcode_operand_bytes(Opcode op) { return (unsigned)op < OP_COUNT ? info[op].operand_bytes : 0; }

void disassemble(const Chunk *ch, StrBuf *sb) {
    for (int pc = 0; pc < ch->len;) {
        Opcode op = (Opcode)ch->code[pc];
        strbuf_printf(sb, "  %04d %s", pc, opcode_name(op));
        if ((unsigned)op < OP_COUNT)
            info[op].print(ch, pc + 1, sb);
        strbuf_putc(sb, '\n');
        pc += 1 + opcode_operand_bytes(op);
    }
}
