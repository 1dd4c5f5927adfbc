package io.sftnative.template;

import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.tree.Node;
import io.sftnative.json.PyJson;

import jinjava.javax.el.CompositeELResolver;

/**
 * Renders HF chat templates with jinjava, configured like transformers' environment: {@code trim_blocks},
 * {@code lstrip_blocks}, {@code {{-}} trimming, Python operator precedence, {@code raise_exception},
 * {@code strftime_now}, and a {@code tojson} that writes Python's {@code json.dumps} format.
 *
 * <p>jinja2 features jinjava lacks are bridged, never re-implemented: Python str/dict methods come from
 * {@link PyMethods}; two syntax forms are rewritten before parsing ({@code x[::-1]} to {@code (x|reverse)}, and
 * keyword arguments of {@code namespace(...)} parenthesised, as jinjava binds {@code a=b|length - 1} differently);
 * one trailing newline is dropped like jinja2's {@code keep_trailing_newline=False}.
 */
final class JinjaEngine {
    private static final Pattern REVERSE_SLICE = Pattern.compile("([A-Za-z_][A-Za-z0-9_.]*)\\[::-1\\]");
    private static final Pattern NAMESPACE_CALL = Pattern.compile("namespace\\(([^()]*(?:\\([^()]*\\)[^()]*)*)\\)");

    private final Jinjava jinjava;
    private final String source;
    private final Node tree; // parsed once; every render walks it with a fresh interpreter
    // jinjava contexts are not thread-safe and copying the global one costs ~0.5 ms: one copy per thread
    private final ThreadLocal<Context> threadContext;

    JinjaEngine(String template) {
        LegacyOverrides legacy = LegacyOverrides.newBuilder()
                .withUseTrimmingForNotesAndExpressions(true)
                .withUseNaturalOperatorPrecedence(true)
                .build();
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PyMethods());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_WRITE);
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withLegacyOverrides(legacy)
                .withElResolver(resolver)
                .withFailOnUnknownTokens(false)
                .withNestedInterpretationEnabled(false) // "{{name}}" inside a message is text, not a template
                .build();
        this.jinjava = new Jinjava(config);
        jinjava.registerFunction(new ELFunctionDefinition("", "raise_exception", JinjaEngine.class,
                "raiseException", Object.class));
        jinjava.registerFunction(new ELFunctionDefinition("", "strftime_now", JinjaEngine.class, "strftimeNow",
                String.class));
        jinjava.registerFilter(new ToJson());
        this.source = adapt(template);
        this.threadContext = ThreadLocal.withInitial(jinjava::getGlobalContextCopy);
        JinjavaInterpreter parser = jinjava.newInterpreter();
        JinjavaInterpreter.pushCurrent(parser);
        try {
            this.tree = parser.parse(source);
        } finally {
            JinjavaInterpreter.popCurrent();
        }
        for (TemplateError e : parser.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new TemplateException("the model's chat_template cannot be parsed (line " + e.getLineno()
                        + "): " + e.getMessage() + "; set template to a named template instead of auto");
            }
        }
    }

    /** Source rewrites for jinja2 syntax jinjava does not parse (see the class comment). */
    static String adapt(String template) {
        String s = template.endsWith("\n") ? template.substring(0, template.length() - 1) : template;
        s = REVERSE_SLICE.matcher(s).replaceAll("($1|reverse)");
        Matcher m = NAMESPACE_CALL.matcher(s);
        StringBuilder sb = new StringBuilder();
        while (m.find()) {
            StringBuilder args = new StringBuilder();
            for (String arg : splitTopLevel(m.group(1))) {
                int eq = arg.indexOf('=');
                if (args.length() > 0) {
                    args.append(", ");
                }
                if (eq > 0 && arg.substring(0, eq).trim().matches("[A-Za-z_][A-Za-z0-9_]*")
                        && (eq + 1 >= arg.length() || arg.charAt(eq + 1) != '=')) {
                    args.append(arg.substring(0, eq).trim()).append("=(").append(arg.substring(eq + 1).trim())
                            .append(')');
                } else {
                    args.append(arg.trim());
                }
            }
            m.appendReplacement(sb, Matcher.quoteReplacement("namespace(" + args + ")"));
        }
        m.appendTail(sb);
        return sb.toString();
    }

    private static java.util.List<String> splitTopLevel(String s) {
        java.util.List<String> out = new java.util.ArrayList<>();
        int depth = 0;
        int start = 0;
        char quote = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (quote != 0) {
                if (c == quote) {
                    quote = 0;
                }
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
            } else if (c == ',' && depth == 0) {
                out.add(s.substring(start, i));
                start = i + 1;
            }
        }
        if (!s.substring(start).isBlank()) {
            out.add(s.substring(start));
        }
        return out;
    }

    String render(Map<String, ?> bindings) {
        Context context = new Context(threadContext.get(), bindings, jinjava.getGlobalConfig().getDisabled());
        JinjavaInterpreter interpreter = new JinjavaInterpreter(jinjava, context, jinjava.getGlobalConfig());
        String out;
        JinjavaInterpreter.pushCurrent(interpreter);
        try {
            out = interpreter.render(tree);
        } finally {
            JinjavaInterpreter.popCurrent();
        }
        for (TemplateError e : interpreter.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new TemplateException("the model's chat_template cannot be rendered (line " + e.getLineno()
                        + "): " + e.getMessage() + "; set template to a named template instead of auto");
            }
        }
        return out;
    }

    public static Object raiseException(Object message) {
        throw new TemplateException("the chat_template raised: " + message);
    }

    /** Python strftime for the directives chat templates use (%d %b %Y %m %H %M %S %B %a %A). */
    public static String strftimeNow(String format) {
        LocalDateTime now = LocalDateTime.now();
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                sb.append(c);
                continue;
            }
            char d = format.charAt(++i);
            String pattern = switch (d) {
                case 'd' -> "dd";
                case 'b' -> "MMM";
                case 'B' -> "MMMM";
                case 'Y' -> "yyyy";
                case 'y' -> "yy";
                case 'm' -> "MM";
                case 'H' -> "HH";
                case 'M' -> "mm";
                case 'S' -> "ss";
                case 'a' -> "EEE";
                case 'A' -> "EEEE";
                default -> null;
            };
            sb.append(pattern == null ? "%" + d : now.format(DateTimeFormatter.ofPattern(pattern, Locale.ENGLISH)));
        }
        return sb.toString();
    }

    /** transformers' tojson: json.dumps(x, ensure_ascii=False). */
    static final class ToJson implements Filter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return PyJson.dumpsNonAscii(var);
        }
    }
}
