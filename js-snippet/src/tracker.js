/* Clickstream tracker (served as /t.js). Paste-in loader: see js-snippet/README.md.
 * Sends hits to <collector>/collect with navigator.sendBeacon (image pixel
 * <collector>/p.gif as the fallback); hits that cannot leave now wait in a small
 * localStorage queue. Parameter names are the collector's short names (DESIGN.md). */
(function (w, d, nav) {
  var me = d.currentScript || d.querySelector('script[data-site]');
  var attr = function (name) {
    return me && me.getAttribute('data-' + name);
  };
  var site = attr('site');
  var old = w.cs;
  if (!site || (old && old.on)) return; // no site configured, or loaded twice
  var dnt = attr('respect-dnt');
  var now = Date.now;
  var loc = w.location;
  var QKEY = '_cs_q';
  // the site's search parameters (its `search_params` setting, put in the snippet by the
  // collector when they are not these)
  var SEARCH = (attr('search') || 'q,query,s,search,searchword,k,keyword,keywords').split(',');
  // read again before every request: a visitor may opt out while the page stays open (an
  // SPA, a consent dialog, a page restored from the back-forward cache)
  var optedOut = function () {
    return /(^|; )_cs_optout=1/.test(d.cookie);
  };
  if (
    optedOut() ||
    (dnt != null && dnt != 'false' && (nav.doNotTrack == '1' || nav.globalPrivacyControl))
  ) {
    w.cs = function () {}; // the visitor said no: drop the queue, send nothing, set no cookie
    w.cs.on = 1;
    return;
  }
  var pending = (old && old.q) || []; // [[created ms, arguments], ...] from the stub
  var cs = (w.cs = function () {
    ready ? run(arguments, now()) : pending.push([now(), arguments]);
  });
  cs.on = 1;
  var base = attr('collector') || new URL(me.src).origin;
  var ready, uid, first, navType, lastUrl, batch, lastCts = 0, ref = d.referrer;

  // first-party visitor id, sent as `vid` (the collector prefers its own cookie)
  var vid = (d.cookie.match(/(?:^|; )_cs_vid=([\w-]{8,64})/) || [])[1];
  if (!vid) {
    vid = '';
    crypto.getRandomValues(new Uint8Array(16)).forEach(function (b) {
      vid += (b + 256).toString(16).slice(1);
    });
  }
  // 400 days: the longest lifetime Chromium keeps (RFC 6265bis), refreshed on every page
  d.cookie = '_cs_vid=' + vid + ';max-age=34560000;path=/;samesite=lax';

  function load() {
    try {
      return JSON.parse(localStorage[QKEY] || '[]');
    } catch (e) {
      return [];
    }
  }
  function store(list) {
    try {
      localStorage[QKEY] = JSON.stringify(list.slice(-20)); // keep the 20 newest
    } catch (e) {}
  }
  function keep(hit) {
    var list = load();
    list.push(hit);
    store(list);
  }
  function beacon(body) {
    return nav.sendBeacon && nav.sendBeacon(base + '/collect', JSON.stringify(body));
  }
  function send(hit) {
    batch ? batch.push(hit) : transmit([hit]);
  }
  // one request for the list: its hits share `sts` and the collector's receive time,
  // so their derived times keep the client's order exactly. `cts` runs ahead of the
  // clock when hits come faster than one per ms, and sts < cts would void the offset
  function transmit(list) {
    if (optedOut()) return store([]); // opted out since the page loaded: send nothing, keep nothing
    var t = now();
    list.forEach(function (hit) {
      t = Math.max(t, hit.cts);
    });
    list.forEach(function (hit) {
      hit.sts = t;
    });
    if (nav.onLine === false) return list.forEach(keep);
    if (beacon(list[1] ? list : list[0])) return;
    list.forEach(function (hit) {
      var img = new Image();
      img.onerror = function () {
        keep(hit);
      };
      img.src = base + '/p.gif?' + new URLSearchParams(hit);
    });
  }
  function flush() {
    var list = load();
    if (list.length) store([]), transmit(list);
  }

  function hit(event, data, created) {
    data.s = site;
    data.e = event;
    data.u = loc.href;
    data.vid = vid;
    data.uid = uid;
    data.cts = lastCts = Math.max(created || now(), lastCts + 1); // strictly increasing
    for (var k in data) {
      var v = data[k];
      if (v == null || v === '') delete data[k];
      // the collector drops a hit with a NUL byte, or a field over its limit
      else if (typeof v == 'string') data[k] = v.replace(/\0/g, '').slice(0, /^[ur]$/.test(k) ? 2000 : /^x_/.test(k) ? 500 : k == 'e' ? 64 : k == 'uid' ? 128 : 1000);
    }
    send(data);
  }

  // a page: pageview, or search when the URL carries a site-search parameter
  function page(navigation, data, created) {
    var params = new URL(loc.href).searchParams;
    data = data || {};
    params.forEach(function (v, k) {
      if (/^utm_/.test(k)) data[k] = v;
    });
    SEARCH.some(function (k) {
      if (!data.e && params.get(k)) data.e = 'search', data.q = params.get(k);
    });
    data.t = d.title;
    data.r = ref;
    data.nav = navigation;
    lastUrl = loc.href;
    hit(data.e || 'pageview', data, created);
  }

  // a jump to an in-page anchor (#section) is the same page view; a hash route (#/cart,
  // #!/cart) is a new one
  var noAnchor = function (u) {
    return ('' + u).replace(/#(?![/!]).*$/, '');
  };
  function route(navigation) {
    if (ready && noAnchor(loc.href) != noAnchor(lastUrl)) {
      ref = lastUrl;
      page(navType || navigation);
    }
    navType = 0;
    entries = history.length;
  }

  function run(args, created) {
    var cmd = args[0];
    var props = {};
    var i = 0;
    if (cmd == 'event' && args[1]) {
      // the collector's limits: 30 props, names of 1-64 [A-Za-z0-9_.-], values of 500
      for (var k in args[2]) if (i++ < 30) props['x_' + k.replace(/[^\w.-]/g, '_').slice(0, 64)] = '' + args[2][k];
      hit(('' + args[1]).replace(/[^\w.:-]/g, '_'), props, created);
    }
    if (cmd == 'search') {
      // a result count the collector accepts (0..999999999) or none: never a guess
      props = { e: 'search', q: args[1], n: /^\d{1,9}$/.test(args[2]) ? +args[2] : null };
      ready ? page('navigate', props, created) : (first = props);
    }
    if (cmd == 'identify' && args[1]) {
      uid = '' + args[1];
      if (ready) hit('identify', {}, created);
    }
  }

  function nav0() {
    var entry = performance.getEntriesByType('navigation')[0];
    return entry && /^(reload|back_forward)$/.test(entry.type) ? entry.type : 'navigate';
  }

  function start() {
    if (ready) return;
    pending.forEach(function (p) {
      if (/^(search|identify)$/.test(p[1][0])) run(p[1], p[0]); // shape the first page hit
    });
    // the first page hit and the queued calls leave together; the page's time is now,
    // or its first queued call if earlier (never before the previous page's pagehide,
    // unlike performance.timeOrigin)
    batch = [];
    page(nav0(), first, Math.min.apply(0, pending.map(function (p) { return p[0]; }).concat(now())));
    ready = 1;
    pending.forEach(function (p) {
      if (!/^(search|identify)$/.test(p[1][0])) run(p[1], p[0]);
    });
    transmit(batch);
    pending = batch = 0;
    flush();
  }

  // single-page apps: every URL change is a page; back/forward from the Navigation API
  ['pushState', 'replaceState'].forEach(function (m) {
    var orig = history[m];
    history[m] = function () {
      var r = orig.apply(this, arguments);
      route('navigate');
      return r;
    };
  });
  var on = function (target, type, fn) {
    target.addEventListener(type, fn, true);
  };
  if (w.navigation)
    on(w.navigation, 'navigate', function (e) {
      navType = e.navigationType == 'traverse' ? 'back_forward' : 'navigate';
    });
  // without the Navigation API: popstate also fires for a new fragment navigation (a hash
  // route link, `location.hash = …`), which adds a history entry; a traversal adds none
  var entries = history.length;
  on(w, 'popstate', function () {
    route(history.length > entries ? 'navigate' : 'back_forward');
  });
  on(w, 'hashchange', function () {
    route('navigate');
  });
  // restored from the back-forward cache: the page does not load again
  on(w, 'pageshow', function (e) {
    entries = history.length; // the visitor may have gone on and come back
    if (e.persisted) {
      ref = d.referrer;
      page('back_forward');
    }
  });
  on(w, 'pagehide', flush);
  on(w, 'online', flush);

  // outbound links and downloads (left and middle clicks)
  ['click', 'auxclick'].forEach(function (type) {
    on(d, type, function (e) {
      var a = e.target.closest && e.target.closest('a[href]');
      if (!a || e.button > 1) return;
      var kind =
        a.hasAttribute('download') ||
        /\.(pdf|zip|gz|tgz|7z|rar|dmg|exe|msi|pkg|apk|iso|csv|xlsx?|docx?|pptx?|odt|ods|txt|rtf|epub|mp3|mp4|mov|avi)$/i.test(a.pathname)
          ? 'download'
          : a.host != loc.host && /^http/.test(a.protocol) && 'outbound';
      if (kind) hit(kind, { x_url: a.href });
    });
  });

  // a prerendered page counts when the visitor actually opens it
  d.prerendering
    ? on(d, 'prerenderingchange', start)
    : d.readyState == 'loading'
      ? on(d, 'DOMContentLoaded', start)
      : start();
})(window, document, navigator);
