// A calculator language: a tokenizer, a recursive-descent parser building
// an AST, and an evaluator with variables and user functions. Errors are
// C++ exceptions thrown deep in the recursion and caught several frames up;
// some handlers add context and rethrow; RAII guards print as the stack
// unwinds. Built-in functions register themselves from static constructors
// of global objects, ordered by init_priority and constructor priorities.
// Exit status: the number of statements that failed (8).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

std::vector<std::string> *startup_order;

void started(const char *what) {
    if (!startup_order) startup_order = new std::vector<std::string>;
    startup_order->push_back(what);
}

__attribute__((constructor(150))) void early_hook() { started("ctor(150)"); }

struct CalcError : std::runtime_error {
    int position;
    CalcError(const std::string &what, int pos) : std::runtime_error(what), position(pos) {}
};
struct ParseError : CalcError {
    using CalcError::CalcError;
};
struct MathError : CalcError {
    using CalcError::CalcError;
};
struct DepthError : std::exception {
    int depth;
    explicit DepthError(int d) : depth(d) {}
    const char *what() const noexcept override { return "recursion too deep"; }
};

int live_guards = 0;
int max_guards = 0;

// Prints when a frame is left by an exception.
class Guard {
  public:
    Guard(const char *name, int depth) : name_(name), depth_(depth) {
        if (++live_guards > max_guards) max_guards = live_guards;
    }
    ~Guard() {
        --live_guards;
        if (std::uncaught_exceptions() > 0 && depth_ % 8 == 0)
            std::printf("    unwinding %s at depth %d\n", name_, depth_);
    }
    Guard(const Guard &) = delete;
    Guard &operator=(const Guard &) = delete;

  private:
    const char *name_;
    int depth_;
};

using Builtin = double (*)(const std::vector<double> &);

std::map<std::string, std::pair<int, Builtin>> &builtins() {
    static std::map<std::string, std::pair<int, Builtin>> table;
    return table;
}

struct Register {
    Register(const char *name, int arity, Builtin fn, const char *tag) {
        builtins()[name] = {arity, fn};
        started(tag);
    }
};

double b_sqrt(const std::vector<double> &a) {
    if (a[0] < 0) throw MathError("sqrt of a negative number", -1);
    return std::sqrt(a[0]);
}
double b_max(const std::vector<double> &a) { return a[0] > a[1] ? a[0] : a[1]; }
double b_min(const std::vector<double> &a) { return a[0] < a[1] ? a[0] : a[1]; }
double b_hypot(const std::vector<double> &a) { return std::sqrt(a[0] * a[0] + a[1] * a[1]); }
double b_floor(const std::vector<double> &a) { return std::floor(a[0]); }

Register r_max __attribute__((init_priority(300))) ("max", 2, b_max, "max(300)");
Register r_sqrt __attribute__((init_priority(200))) ("sqrt", 1, b_sqrt, "sqrt(200)");
Register r_min("min", 2, b_min, "min(default)");
Register r_hypot __attribute__((init_priority(250))) ("hypot", 2, b_hypot, "hypot(250)");
Register r_floor("floor", 1, b_floor, "floor(default)");

// ---- tokens ----
enum class Tok { Num, Ident, Op, LParen, RParen, Comma, Assign, End };
struct Token {
    Tok kind;
    std::string text;
    double value;
    int pos;
};

std::vector<Token> tokenize(const std::string &s) {
    std::vector<Token> out;
    size_t i = 0;
    while (i < s.size()) {
        char c = s[i];
        if (c == ' ') { i++; continue; }
        int pos = (int)i;
        if ((c >= '0' && c <= '9') || c == '.') {
            size_t used;
            double v = std::stod(s.substr(i), &used);
            out.push_back({Tok::Num, s.substr(i, used), v, pos});
            i += used;
        } else if ((c >= 'a' && c <= 'z') || c == '_') {
            size_t j = i;
            while (j < s.size() && ((s[j] >= 'a' && s[j] <= 'z') || s[j] == '_' || (s[j] >= '0' && s[j] <= '9'))) j++;
            out.push_back({Tok::Ident, s.substr(i, j - i), 0, pos});
            i = j;
        } else if (std::string("+-*/%^<").find(c) != std::string::npos) {
            out.push_back({Tok::Op, std::string(1, c), 0, pos});
            i++;
        } else if (c == '(' || c == ')' || c == ',' || c == '=') {
            out.push_back({c == '(' ? Tok::LParen : c == ')' ? Tok::RParen : c == ',' ? Tok::Comma : Tok::Assign,
                           std::string(1, c), 0, pos});
            i++;
        } else {
            throw ParseError(std::string("unexpected character '") + c + "'", pos);
        }
    }
    out.push_back({Tok::End, "", 0, (int)s.size()});
    return out;
}

// ---- AST ----
struct Node {
    virtual ~Node() { nodes_freed++; }
    virtual double eval(class Env &env, int depth) const = 0;
    static int nodes_freed;
};
int Node::nodes_freed = 0;
using NodeP = std::unique_ptr<Node>;

struct Function {
    std::vector<std::string> params;
    std::shared_ptr<Node> body;
};

class Env {
  public:
    std::map<std::string, double> vars;
    std::map<std::string, Function> funcs;
    long calls = 0;
};

struct Num : Node {
    double v;
    explicit Num(double x) : v(x) {}
    double eval(Env &, int) const override { return v; }
};
struct Var : Node {
    std::string name;
    int pos;
    Var(std::string n, int p) : name(std::move(n)), pos(p) {}
    double eval(Env &env, int) const override {
        auto it = env.vars.find(name);
        if (it == env.vars.end()) throw MathError("unknown variable '" + name + "'", pos);
        return it->second;
    }
};
struct Bin : Node {
    char op;
    NodeP l, r;
    int pos;
    Bin(char o, NodeP a, NodeP b, int p) : op(o), l(std::move(a)), r(std::move(b)), pos(p) {}
    double eval(Env &env, int depth) const override {
        Guard g("binary", depth);
        double a = l->eval(env, depth + 1);
        if (op == '<') return a < r->eval(env, depth + 1) ? 1 : 0;
        double b = r->eval(env, depth + 1);
        switch (op) {
        case '+': return a + b;
        case '-': return a - b;
        case '*': return a * b;
        case '/':
            if (b == 0) throw MathError("division by zero", pos);
            return a / b;
        case '%':
            if (b == 0) throw MathError("modulo by zero", pos);
            return std::fmod(a, b);
        case '^': return std::pow(a, b);
        }
        throw std::logic_error("bad operator");
    }
};
struct Call : Node {
    std::string name;
    std::vector<NodeP> args;
    int pos;
    double eval(Env &env, int depth) const override {
        Guard g("call", depth);
        if (depth > 200) throw DepthError(depth);
        std::vector<double> vals;
        for (auto &a : args) vals.push_back(a->eval(env, depth + 1));
        env.calls++;
        auto b = builtins().find(name);
        if (b != builtins().end()) {
            if ((int)vals.size() != b->second.first)
                throw MathError(name + " takes " + std::to_string(b->second.first) + " arguments", pos);
            try {
                return b->second.second(vals);
            } catch (MathError &e) {
                e.position = pos;  // add the position and pass it on
                throw;
            }
        }
        auto f = env.funcs.find(name);
        if (f == env.funcs.end()) throw MathError("unknown function '" + name + "'", pos);
        if (f->second.params.size() != vals.size()) throw MathError("wrong arity for " + name, pos);
        // `if` is a user function of three arguments evaluated eagerly; conditionals
        // use the `<` operator and arithmetic instead.
        std::map<std::string, double> saved = env.vars;
        for (size_t i = 0; i < vals.size(); i++) env.vars[f->second.params[i]] = vals[i];
        std::shared_ptr<Node> body = f->second.body;
        double result;
        try {
            result = body->eval(env, depth + 1);
        } catch (...) {
            env.vars = std::move(saved);
            throw;
        }
        env.vars = std::move(saved);
        return result;
    }
};
struct Cond : Node {  // c ? a : b written as cond(c, a, b), lazily
    NodeP c, a, b;
    double eval(Env &env, int depth) const override {
        Guard g("cond", depth);
        return c->eval(env, depth + 1) != 0 ? a->eval(env, depth + 1) : b->eval(env, depth + 1);
    }
};

// ---- parser ----
class Parser {
  public:
    explicit Parser(std::vector<Token> t) : toks_(std::move(t)) {}
    NodeP expression(int prec = 0) {
        NodeP lhs = unary();
        for (;;) {
            const Token &t = peek();
            int p = t.kind == Tok::Op ? precedence(t.text[0]) : -1;
            if (p < prec || p < 0) return lhs;
            Token op = next();
            NodeP rhs = expression(op.text[0] == '^' ? p : p + 1);
            lhs = NodeP(new Bin(op.text[0], std::move(lhs), std::move(rhs), op.pos));
        }
    }
    const Token &peek() const { return toks_[i_]; }
    Token next() { return toks_[i_++]; }
    void expect(Tok k, const char *what) {
        if (peek().kind != k) throw ParseError(std::string("expected ") + what + ", found '" + peek().text + "'", peek().pos);
        i_++;
    }

  private:
    static int precedence(char op) {
        switch (op) {
        case '<': return 1;
        case '+': case '-': return 2;
        case '*': case '/': case '%': return 3;
        case '^': return 4;
        }
        return -1;
    }
    NodeP unary() {
        if (peek().kind == Tok::Op && peek().text == "-") {
            int pos = next().pos;
            return NodeP(new Bin('-', NodeP(new Num(0)), unary(), pos));
        }
        return primary();
    }
    NodeP primary() {
        Token t = next();
        switch (t.kind) {
        case Tok::Num: return NodeP(new Num(t.value));
        case Tok::LParen: {
            NodeP e = expression();
            expect(Tok::RParen, "')'");
            return e;
        }
        case Tok::Ident: {
            if (peek().kind != Tok::LParen) return NodeP(new Var(t.text, t.pos));
            next();
            std::vector<NodeP> args;
            if (peek().kind != Tok::RParen) {
                for (;;) {
                    args.push_back(expression());
                    if (peek().kind != Tok::Comma) break;
                    next();
                }
            }
            expect(Tok::RParen, "')'");
            if (t.text == "cond") {
                if (args.size() != 3) throw ParseError("cond takes 3 arguments", t.pos);
                auto c = new Cond;
                c->c = std::move(args[0]);
                c->a = std::move(args[1]);
                c->b = std::move(args[2]);
                return NodeP(c);
            }
            auto c = new Call;
            c->name = t.text;
            c->args = std::move(args);
            c->pos = t.pos;
            return NodeP(c);
        }
        default:
            throw ParseError("unexpected '" + t.text + "'", t.pos);
        }
    }
    std::vector<Token> toks_;
    size_t i_ = 0;
};

// `def name(a, b) = body`, `name = expr`, or an expression.
std::string run_statement(Env &env, const std::string &line) {
    std::vector<Token> toks = tokenize(line);
    if (toks.size() > 2 && toks[0].kind == Tok::Ident && toks[0].text == "def") {
        Parser p(std::vector<Token>(toks.begin() + 1, toks.end()));
        Token name = p.next();
        if (name.kind != Tok::Ident) throw ParseError("expected a function name", name.pos);
        p.expect(Tok::LParen, "'('");
        Function f;
        while (p.peek().kind == Tok::Ident) {
            f.params.push_back(p.next().text);
            if (p.peek().kind == Tok::Comma) p.next();
        }
        p.expect(Tok::RParen, "')'");
        p.expect(Tok::Assign, "'='");
        f.body = std::shared_ptr<Node>(p.expression().release());
        p.expect(Tok::End, "end of line");
        env.funcs[name.text] = f;
        return "defined " + name.text + "/" + std::to_string(f.params.size());
    }
    std::string target;
    if (toks.size() > 2 && toks[0].kind == Tok::Ident && toks[1].kind == Tok::Assign) {
        target = toks[0].text;
        toks.erase(toks.begin(), toks.begin() + 2);
    }
    Parser p(std::move(toks));
    NodeP e = p.expression();
    p.expect(Tok::End, "end of line");
    double v = e->eval(env, 0);
    if (!target.empty()) env.vars[target] = v;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.10g", v);
    return (target.empty() ? "" : target + " = ") + buf;
}

// Adds the line number to a CalcError and rethrows; other exceptions pass.
std::string with_context(Env &env, const std::string &line, int number) {
    try {
        return run_statement(env, line);
    } catch (CalcError &e) {
        std::printf("  (line %d, column %d)\n", number, e.position);
        throw;
    }
}

}  // namespace

int main(int argc, char **argv) {
    std::printf("startup:");
    for (auto &s : *startup_order) std::printf(" %s", s.c_str());
    std::printf("\n");
    int n = argc > 1 ? std::atoi(argv[1]) : 18;
    const std::vector<std::string> program = {
        "x = 3",
        "y = x * 4 + 2 ^ 3 ^ 2 / 64",
        "def sq(a) = a * a",
        "def fib(k) = cond(k < 2, k, fib(k - 1) + fib(k - 2))",
        "def fact(k) = cond(k < 1, 1, k * fact(k - 1))",
        "def boom(k) = cond(k < 1, 1 / 0, boom(k - 1))",
        "def down(k) = down(k + 1)",
        "sq(x) + sq(y)",
        "fib(" + std::to_string(n) + ")",
        "fact(10) / fact(8)",
        "hypot(3, 4) + max(1, min(7, 5)) + floor(2.75)",
        "sqrt(2 - 3)",
        "boom(20)",
        "down(0)",
        "z + 1",
        "sq(1, 2)",
        "1 + * 2",
        "(1 + 2",
        "4 $ 4",
        "r = 10 % 4 + -x",
        "r * 2",
    };
    Env env;
    int failed = 0;
    for (size_t i = 0; i < program.size(); i++) {
        std::printf("> %s\n", program[i].c_str());
        try {
            std::printf("%s\n", with_context(env, program[i], (int)i + 1).c_str());
        } catch (const ParseError &e) {
            std::printf("parse error: %s\n", e.what());
            failed++;
        } catch (const MathError &e) {
            std::printf("math error: %s\n", e.what());
            failed++;
        } catch (const std::exception &e) {
            std::printf("error: %s (%s)\n", e.what(),
                        dynamic_cast<const DepthError *>(&e) ? "depth" : "other");
            failed++;
        }
        std::printf("  live guards %d\n", live_guards);
    }
    std::printf("calls %ld, deepest guard stack %d, nodes freed so far %d\n", env.calls, max_guards,
                Node::nodes_freed);
    return failed;
}
